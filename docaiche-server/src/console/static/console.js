// DocAIche console: progressive enhancement only; every page reads without it.
// No inline script anywhere (the Content-Security-Policy forbids it).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons: <button data-copy="element-id">.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.textContent);
        button.textContent = "Copied";
      } catch {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
    });
  }
  // Lazy panels: <section data-panel="/console/..."> holds a link to the
  // panel's own page; after the first paint the panel's HTML replaces it.
  for (const panel of document.querySelectorAll("[data-panel]")) {
    fetch(panel.dataset.panel, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((text) => {
        const fragment = new DOMParser().parseFromString(text, "text/html");
        const content = fragment.querySelector("[data-panel-content]");
        if (content) panel.replaceChildren(...content.childNodes);
        panel.setAttribute("aria-busy", "false");
      })
      .catch(() => panel.setAttribute("aria-busy", "false"));
  }
});
