//! Escaping and the page frame of the admin console.

use std::fmt::Write as _;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse as _, Response};

use super::CONSOLE_PATH;

/// The Content-Security-Policy of every console page: nothing but the console's own style
/// sheet, inline images (QR codes) and forms posting back to the console.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's style sheet, served at `/admin-console/static/console.css`.
pub(super) const STYLE: &str = include_str!("console.css");

/// `text` escaped for HTML text and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What a path segment keeps as it is: RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path segment percent-encoded for a console link or an API path.
pub(super) fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// A hidden form field carrying the CSRF token.
pub(super) fn csrf_field(csrf: &str) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        escape(csrf)
    )
}

/// A message box: `kind` is `error` or `notice`.
pub(super) fn message(kind: &str, text: &str) -> String {
    format!(
        r#"<p class="message {kind}" role="{role}">{}</p>"#,
        escape(text),
        role = if kind == "error" { "alert" } else { "status" }
    )
}

/// A table of `rows` under `headings`; the cells are HTML already.
pub(super) fn table(headings: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><thead><tr>");
    for heading in headings {
        let _ = write!(out, "<th>{}</th>", escape(heading));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A whole page: the navigation (with the sign-out form when `csrf` is a signed-in
/// session's) and `body`, with the console's security headers.
pub(super) fn page(status: StatusCode, title: &str, csrf: Option<&str>, body: &str) -> Response {
    let nav = csrf.map_or_else(String::new, |csrf| {
        format!(
            r#"<nav><a href="{CONSOLE_PATH}/">Tenants</a><a href="{CONSOLE_PATH}/operators">Operators</a><a href="{CONSOLE_PATH}/health">Health</a><form method="post" action="{CONSOLE_PATH}/logout">{}<button type="submit">Sign out</button></form></nav>"#,
            csrf_field(csrf)
        )
    });
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · EDK admin console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{CONSOLE_PATH}/static/console.css">
</head>
<body>
<header><span class="brand">EDK admin console</span>{nav}</header>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"#,
        title = escape(title),
    );
    secured(
        html.with_status(status)
            .with_content_type("text/html; charset=utf-8")
            .into_response(),
    )
}

/// `response` with the console's security headers.
pub(super) fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("a/b c-1.x_~"), "a%2Fb%20c-1.x_~");
    }
}
