// The admin console in a real browser: Debian's headless Chromium, driven
// over the DevTools protocol by playwright-core, each page checked by
// axe-core. Run by scripts/console-browser.sh, which starts the server and
// an administrator; this file only browses.
//
// Environment: BASE (http://127.0.0.1:PORT), TENANT, EMAIL, PASSWORD, OUT
// (where screenshots and results.json go), CHROMIUM (default
// /usr/bin/chromium).
//
// Every step's screenshot is 1280×800. The run fails on the first broken
// expectation, on any Content-Security-Policy violation, on any JavaScript
// dialog (a script injected through a key name would open one), and on any
// serious or critical accessibility violation.

import { readFile, writeFile, mkdir } from "node:fs/promises";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const { BASE, TENANT, EMAIL, PASSWORD } = process.env;
const OUT = process.env.OUT ?? "console-artifacts";
const HOSTILE = "<img src=x onerror=alert(1)>";
const axeSource = await readFile(require.resolve("axe-core/axe.min.js"), "utf8");

const results = { steps: [], accessibility: {}, cspViolations: [] };
const fail = (message) => {
  throw new Error(message);
};
const expect = (condition, message) => condition || fail(message);

await mkdir(OUT, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.on("dialog", async (dialog) => {
  results.dialogs = (results.dialogs ?? 0) + 1;
  await dialog.dismiss();
  fail(`a JavaScript dialog opened: ${dialog.message()}`);
});
page.on("console", (message) => {
  if (/Content Security Policy/i.test(message.text())) results.cspViolations.push(message.text());
});

/** Screenshot the current page as step `name`, and check its accessibility. */
async function step(name) {
  await page.screenshot({ path: `${OUT}/${name}.png` });
  // Evaluated over the DevTools protocol, which the page's CSP does not
  // govern: the page itself still allows no inline script.
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const report = await globalThis.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
    });
    return report.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  const grave = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  results.accessibility[name] = violations;
  results.steps.push({ name, url: page.url(), violations: violations.length, grave: grave.length });
  expect(grave.length === 0, `${name}: accessibility: ${JSON.stringify(grave)}`);
  expect(results.cspViolations.length === 0, `${name}: CSP: ${results.cspViolations.join(" | ")}`);
  console.log(`ok ${name} (${violations.length} minor accessibility findings)`);
}

/** The API, as a client holding `key` (not the browser). */
const api = (path, key) => fetch(`${BASE}${path}`, { headers: { "x-api-key": key } });

// 1. Signed out: the console sends us to sign in.
await page.goto(`${BASE}/console`);
expect(page.url().endsWith("/console/sign-in"), `not at sign-in: ${page.url()}`);
await step("01-sign-in");

// 2. Sign in with the password.
await page.getByLabel("Tenant").fill(TENANT);
await page.getByLabel("E-mail address").fill(EMAIL);
await page.getByLabel("Password").fill(PASSWORD);
await Promise.all([page.waitForURL(`${BASE}/console`), page.getByRole("button", { name: "Sign in" }).click()]);
const [cookie] = (await context.cookies()).filter((c) => c.name === "__Host-docaiche-console");
expect(cookie, "no session cookie");
expect(cookie.httpOnly && cookie.secure && cookie.sameSite === "Lax" && cookie.path === "/",
  `cookie attributes: ${JSON.stringify({ ...cookie, value: "…" })}`);
results.cookie = { httpOnly: cookie.httpOnly, secure: cookie.secure, sameSite: cookie.sameSite, path: cookie.path };
await step("02-overview");

// 3. Create a key with a hostile name: shown once, rendered as text.
await page.getByRole("link", { name: "API keys" }).click();
await page.getByLabel("Name").fill(HOSTILE);
await page.getByLabel("documents:read").check();
await page.getByRole("button", { name: "Create key" }).click();
const key = (await page.locator("#new-key").textContent()).trim();
expect(key.startsWith("dcx_"), `no key shown: ${key}`);
expect(await page.getByRole("button", { name: "Copy" }).isVisible(), "no copy button");
await step("03-key-created");
await page.getByRole("link", { name: "The key's page" }).click();
await page.waitForSelector("section[data-panel][aria-busy=false]");
const barsBefore = await page.locator("svg.chart rect").count();
await step("04-key-before-use");

// 4. Use it: allowed requests and refused ones (keys:manage is not its).
for (let i = 0; i < 6; i++) expect((await api("/v1/whoami", key)).status === 200, "the key is refused");
for (let i = 0; i < 3; i++) expect((await api("/v1/keys", key)).status === 403, "a missing scope is not denied");
// Counts reach the store once per flush interval (1 s in this run).
await new Promise((resolve) => setTimeout(resolve, 2500));
await page.reload();
await page.waitForSelector("section[data-panel][aria-busy=false]");
const barsAfter = await page.locator("svg.chart rect").count();
expect(barsAfter > barsBefore, `the chart did not change: ${barsBefore} → ${barsAfter} bars`);
// The figures table: hour, allowed, rate-limited, denied, invalid credential.
const sums = [0, 0, 0, 0];
for (const row of await page.locator("details table tbody tr").all()) {
  const cells = await row.locator("td").allTextContents();
  cells.slice(1).forEach((cell, i) => (sums[i] += Number(cell)));
}
expect(sums[0] === 6 && sums[2] === 3, `the chart's figures (allowed, limited, denied, invalid): ${sums}`);
results.chart = { barsBefore, barsAfter };
await step("05-key-usage");
await page.getByRole("link", { name: "Overview" }).click();
await page.waitForSelector("section[data-panel][aria-busy=false]");
await step("05b-overview-in-use");

// 5. The list shows the hostile name as text, never as an element.
await page.getByRole("link", { name: "API keys" }).click();
expect(await page.getByText(HOSTILE, { exact: true }).count() >= 1, "the hostile name is not shown as text");
expect(await page.locator("main img").count() === 0, "an <img> was injected");
expect(!(await page.content()).includes(key), "the key's secret is on the list page");

// 6. A cross-site form post, with this session's own CSRF token stolen:
// refused, and no key created.
const csrf = await page.locator('input[name="csrf"]').first().inputValue();
const evil = createServer((_, response) => {
  response.setHeader("content-type", "text/html");
  response.end(`<!doctype html><html lang="en"><title>evil</title><body>
    <form id="f" method="post" action="${BASE}/console/keys">
      <input name="csrf" value="${csrf}"><input name="name" value="stolen">
      <input name="scopes" value="documents:read"></form>
    <script>document.getElementById("f").submit()</script></body></html>`);
});
await new Promise((resolve) => evil.listen(0, "127.0.0.1", resolve));
const evilPage = await context.newPage();
const answers = [];
evilPage.on("response", (response) => {
  if (response.url().startsWith(`${BASE}/console/keys`)) answers.push(response.status());
});
// "localhost" is another site than "127.0.0.1": the browser marks the
// post cross-site.
await evilPage.goto(`http://localhost:${evil.address().port}/`);
await evilPage.waitForLoadState("networkidle");
evil.close();
expect(answers.length > 0 && !answers.includes(201), `the cross-site post was answered ${answers}`);
await page.reload();
expect(await page.getByText("stolen", { exact: true }).count() === 0, "the cross-site post created a key");
results.crossSite = answers;
await evilPage.close();

// 7. Revoke the key: the API refuses it from then on.
await Promise.all([
  page.waitForURL(/status=revoked/),
  page.getByRole("button", { name: `Revoke key ${HOSTILE}` }).click(),
]);
expect((await api("/v1/whoami", key)).status === 401, "the revoked key still works");
await step("06-key-revoked");

// 8. Sign out: the session ends; the console asks for a sign-in again.
await Promise.all([page.waitForURL(/sign-in$/), page.getByRole("button", { name: "Sign out" }).click()]);
expect((await context.cookies()).every((c) => c.name !== "__Host-docaiche-console"), "the cookie survived sign-out");
await context.addCookies([{ ...cookie }]);
await page.goto(`${BASE}/console`);
expect(page.url().endsWith("/console/sign-in"), "the old cookie still opens the console");
await step("07-signed-out");

await browser.close();
await writeFile(`${OUT}/results.json`, JSON.stringify(results, null, 2));
console.log(`console browser test passed: ${results.steps.length} steps, screenshots in ${OUT}`);
