//! The page shell every console page shares, and refusal pages.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use docaiche_core::{Error, Permission};
use maud::{DOCTYPE, Markup, html};

use super::CONSOLE_CSP;
use super::assets;
use super::session::SignedIn;

/// The navigation: path, label, and the permission that shows it.
const NAV: [(&str, &str, Option<Permission>); 3] = [
    ("/console", "Overview", None),
    ("/console/keys", "API keys", Some(Permission::KEYS_MANAGE)),
    ("/console/account/mfa", "Second factor", None),
];

/// A console page: `body` inside the shell, with the navigation of
/// `signed_in` when someone is.
pub(crate) fn page(title: &str, signed_in: Option<&SignedIn>, body: &Markup) -> Response {
    respond(StatusCode::OK, title, signed_in, body)
}

/// A page with `status`.
pub(crate) fn respond(
    status: StatusCode,
    title: &str,
    signed_in: Option<&SignedIn>,
    body: &Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · DocAIche console" }
                link rel="stylesheet" href=(assets::CSS.path());
                script src=(assets::JS.path()) defer {}
            }
            body {
                header.top {
                    a.brand href="/console" { "DocAIche console" }
                    @if let Some(who) = signed_in {
                        nav aria-label="Main" {
                            ul {
                                @for (path, label, needs) in NAV {
                                    @if needs.as_ref().is_none_or(|p| who.principal.has_permission(p)) {
                                        li { a href=(path) { (label) } }
                                    }
                                }
                            }
                        }
                        form.signout method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(who.csrf);
                            span.who { (who.principal.id.as_str()) " · " (who.principal.tenant.as_str()) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    let mut response = (status, Html(markup.into_string())).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Pages link each other by path; no URL leaves the origin.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// A refusal page: `status`, a title and what to do.
pub(crate) fn refusal(status: StatusCode, title: &str, detail: &str) -> Response {
    respond(
        status,
        title,
        None,
        &html! {
            p.problem role="alert" { (detail) }
            p { a href="/console" { "Back to the console" } }
        },
    )
}

/// The refusal page of `error`: its status and client-safe title, its
/// detail when the error's message is meant for clients.
pub(crate) fn error_page(error: &Error) -> Response {
    let status = error.status();
    if status.is_server_error() {
        tracing::warn!(error = %error.log_chain(), "console page failed");
    }
    let detail = if status.is_server_error() {
        "The console could not answer; try again shortly.".to_owned()
    } else {
        error.to_string()
    };
    refusal(status, error.code().title(), &detail)
}
