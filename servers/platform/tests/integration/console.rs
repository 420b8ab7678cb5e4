//! The admin console at `/admin-console`: an operator signs in through the operator
//! authorization server and its upstream provider (npm `oidc-provider`, a real one), by
//! authorization code with PKCE, and manages tenants with server-rendered forms. Over HTTP
//! the tests check the sign-in, the cookies, the security headers, CSRF and escaping; in
//! Debian's headless Chromium (driven by `interop/node/admin_console.mjs` with
//! playwright-core) an operator clicks through the pages with no console errors.

use std::collections::BTreeMap;

use edk_testkit::oidc_provider::{OidcProvider, node_dir, run_script};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use crate::support::{Backend, Platform};

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A platform whose operator realm federates its upstream's user `alice`.
async fn federated_platform(backend: Backend) -> (Platform, OidcProvider, String) {
    let platform = Platform::start(backend).await;
    let (_, ops) = platform.first_operator().await;
    let (op, status, body) = platform.upstream(&ops).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = platform
        .call(
            Method::POST,
            "/api/platform/v1/operators/federated",
            Some(&ops),
            Some(json!({"subject": "alice"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (platform, op, ops)
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` headers of `response`, by cookie name.
fn set_cookies(response: &reqwest::Response) -> BTreeMap<String, String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .map(|value| {
            let name = value.split('=').next().unwrap().to_owned();
            (name, value)
        })
        .collect()
}

/// The value a `Set-Cookie` header sets.
fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

/// The CSRF token in a console page's forms.
fn csrf(page: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
    page[start..][..page[start..].find('"').unwrap()].to_owned()
}

/// A console session: the cookie header of a signed-in operator.
struct Session {
    cookie: String,
}

impl Session {
    async fn get(&self, platform: &Platform, path: &str) -> (u16, String) {
        let response = browser()
            .get(platform.url(path))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Posts `form` to `path`: the status and the page.
    async fn submit(
        &self,
        platform: &Platform,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String) {
        let response = self.post(platform, path, form).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn post(
        &self,
        platform: &Platform,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        browser()
            .post(platform.url(path))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

/// Signs `login` in through the console: the session.
async fn sign_in(platform: &Platform, op: &OidcProvider, login: &str) -> Session {
    let start = browser()
        .get(platform.url("/admin-console/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status().as_u16(), 303);
    let login_cookie = set_cookies(&start)["edk_console_login"].clone();
    let authorize = Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    let callback = platform.url("/admin-console/callback");
    let back = op.login(authorize.as_str(), login, &callback).await;
    let response = browser()
        .get(back.as_str())
        .header(
            "cookie",
            format!("edk_console_login={}", cookie_value(&login_cookie)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let cookies = set_cookies(&response);
    assert!(cookies["edk_console_login"].contains("Max-Age=0"));
    Session {
        cookie: format!(
            "edk_console_session={}",
            cookie_value(&cookies["edk_console_session"])
        ),
    }
}

/// Posts the tenant page's `action` form (`suspend`, `resume`, `delete`), which answers
/// with a redirect: the status of tenant `slug` read through the API after it.
async fn act_on_tenant(
    session: &Session,
    platform: &Platform,
    ops: &str,
    (tenant_page, slug): (&str, &str),
    (action, csrf): (&str, &str),
) -> String {
    let response = session
        .post(
            platform,
            &format!("{tenant_page}/{action}"),
            &[("csrf", csrf)],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303, "{action}");
    let all = tenants(platform, ops).await;
    let tenant = all.iter().find(|tenant| tenant["slug"] == slug).unwrap();
    tenant["status"].as_str().unwrap().to_owned()
}

async fn tenants(platform: &Platform, ops: &str) -> Vec<Value> {
    let (status, list) = platform
        .call(Method::GET, "/api/platform/v1/tenants", Some(ops), None)
        .await;
    assert_eq!(status, 200, "{list}");
    list["tenants"].as_array().unwrap().clone()
}

async fn operators_sign_in_with_pkce_and_manage_tenants(backend: Backend) {
    let (platform, op, ops) = federated_platform(backend).await;

    // Signed out: the sign-in page, with the console's security headers and no cookie.
    let response = browser()
        .get(platform.url("/admin-console/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-security-policy"], CSP);
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers.get("set-cookie").is_none());
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("/admin-console/login")
    );

    // The login: the operator authorization server, PKCE S256, a fresh state in an HttpOnly,
    // Secure, SameSite cookie.
    let start = browser()
        .get(platform.url("/admin-console/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status().as_u16(), 303);
    let authorize = Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(authorize.path(), "/operators/authorize");
    let params: BTreeMap<String, String> = authorize.query_pairs().into_owned().collect();
    assert_eq!(params["client_id"], "edk-admin-console");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"].len(), 43);
    assert_eq!(
        params["redirect_uri"],
        platform.url("/admin-console/callback")
    );
    let login_cookie = set_cookies(&start)["edk_console_login"].clone();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/admin-console"] {
        assert!(login_cookie.contains(attribute), "{login_cookie}");
    }
    assert!(cookie_value(&login_cookie).starts_with(&params["state"]));

    // A callback whose state is not the browser's, or without the login cookie, signs
    // nobody in.
    for cookie in [
        "edk_console_login=forged-state.forged-verifier".to_owned(),
        String::new(),
    ] {
        let response = browser()
            .get(platform.url(&format!(
                "/admin-console/callback?code=any&state={}",
                params["state"]
            )))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert!(!set_cookies(&response).contains_key("edk_console_session"));
    }

    let session = sign_in(&platform, &op, "alice").await;
    let (status, page) = session.get(&platform, "/admin-console/").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>Tenants</h1>"), "{page}");
    let token = csrf(&page);

    // A form without the session's CSRF token changes nothing.
    let before = tenants(&platform, &ops).await.len();
    for sent in ["", "a-token-of-another-session"] {
        let response = session
            .post(
                &platform,
                "/admin-console/tenants",
                &[
                    ("csrf", sent),
                    ("slug", "forged"),
                    ("display_name", "Forged"),
                    ("host", "forged.localhost"),
                ],
            )
            .await;
        assert_eq!(response.status().as_u16(), 403);
    }
    assert_eq!(tenants(&platform, &ops).await.len(), before);

    // Bad input: the API's problem on the form's page, nothing created.
    let response = session
        .post(
            &platform,
            "/admin-console/tenants",
            &[
                ("csrf", &token),
                ("slug", "Not A Slug"),
                ("display_name", "x"),
                ("host", "bad.localhost"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("class=\"message error\"")
    );
    assert_eq!(tenants(&platform, &ops).await.len(), before);

    // A tenant created with the form is onboarded; markup in its name is shown as text.
    let port = platform.http.addr().port().to_string();
    let response = session
        .post(
            &platform,
            "/admin-console/tenants",
            &[
                ("csrf", &token),
                ("slug", "acme"),
                ("display_name", "<script>alert(1)</script> Acme"),
                ("host", "acme.localhost"),
                ("port", &port),
                ("loopback_http", "on"),
                ("service", "issuer"),
                ("service", "verifier"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let tenant_page = response.headers()["location"].to_str().unwrap().to_owned();
    let all = tenants(&platform, &ops).await;
    let acme = all.iter().find(|tenant| tenant["slug"] == "acme").unwrap();
    assert_eq!(
        tenant_page,
        format!("/admin-console/tenants/{}", acme["id"].as_str().unwrap())
    );
    assert_eq!(acme["status"], "active");
    let acme_id = acme["id"].as_str().unwrap().to_owned();
    let (status, page) = session.get(&platform, &tenant_page).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("http://acme.localhost:"), "{page}");
    assert!(
        page.contains(r#"<span class="state-done">done</span>"#),
        "{page}"
    );
    assert!(!page.contains("state-failed"), "{page}");
    let (_, list) = session.get(&platform, "/admin-console/").await;
    assert!(list.contains("&lt;script&gt;alert(1)&lt;/script&gt; Acme"));
    assert!(!list.contains("<script>"));

    // Suspend and resume through the forms.
    for (action, status) in [("suspend", "suspended"), ("resume", "active")] {
        let now = act_on_tenant(
            &session,
            &platform,
            &ops,
            (&tenant_page, "acme"),
            (action, &token),
        )
        .await;
        assert_eq!(now, status);
    }

    // An endpoint moved and a configuration property set through the forms; bad input shows
    // the problem naming the field or key, and changes nothing.
    let (status, page) = session
        .submit(
            &platform,
            &format!("{tenant_page}/bindings"),
            &[
                ("csrf", &token),
                ("service", "verifier"),
                ("host", "verify.localhost"),
                ("port", &port),
                ("path_prefix", "/acme"),
                ("loopback_http", "on"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("http://verify.localhost:{port}/acme")),
        "{page}"
    );
    let (_, bindings) = platform
        .call(
            Method::GET,
            &format!("/api/platform/v1/tenants/{acme_id}/bindings"),
            Some(&ops),
            None,
        )
        .await;
    assert!(
        bindings.to_string().contains("verify.localhost"),
        "{bindings}"
    );
    for (form, expected, named) in [
        (
            vec![
                ("service", "nope"),
                ("host", "x.localhost"),
                ("path_prefix", "/"),
            ],
            400,
            "service",
        ),
        (
            vec![
                ("service", "as"),
                ("host", "x.localhost"),
                ("port", "99999"),
                ("path_prefix", "/"),
            ],
            400,
            "port",
        ),
    ] {
        let mut form = form.clone();
        form.push(("csrf", &token));
        let (status, page) = session
            .submit(&platform, &format!("{tenant_page}/bindings"), &form)
            .await;
        assert_eq!(status, expected, "{page}");
        assert!(page.contains(named), "{page}");
    }
    for (key, value, expected) in [
        ("oauth.client_attestation", "not json", 400),
        (
            "oauth.client_attestation",
            r#"{"max_age_seconds": "soon"}"#,
            400,
        ),
        ("no.such_key", "1", 404),
    ] {
        let (status, page) = session
            .submit(
                &platform,
                &format!("{tenant_page}/config"),
                &[("csrf", &token), ("key", key), ("value", value)],
            )
            .await;
        assert_eq!(status, expected, "{key}: {page}");
        assert!(page.contains("message error"), "{page}");
    }
    let attestation = crate::support::wallet_attestation()["value"].to_string();
    let (status, page) = session
        .submit(
            &platform,
            &format!("{tenant_page}/config"),
            &[
                ("csrf", &token),
                ("key", "oauth.client_attestation"),
                ("value", &attestation),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("oauth.client_attestation is set (version 1)"),
        "{page}"
    );

    // The operators page: an upstream user allowed with the form, once.
    for expected in [200, 409] {
        let (status, page) = session
            .submit(
                &platform,
                "/admin-console/operators/federated",
                &[("csrf", &token), ("subject", "bob")],
            )
            .await;
        assert_eq!(status, expected, "{page}");
    }
    let (_, federated) = platform
        .call(
            Method::GET,
            "/api/platform/v1/operators/federated",
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(
        federated["operators"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|record| record["subject"] == "bob")
            .count(),
        1
    );
    let (status, page) = session.get(&platform, "/admin-console/operators").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<td>bob</td>") && page.contains("<td>alice</td>"),
        "{page}"
    );

    // The audit chain of its KMS keys, verified.
    let (status, page) = session
        .get(&platform, &format!("{tenant_page}/audit"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<td>create_key</td>"), "{page}");
    let response = session
        .post(
            &platform,
            &format!("{tenant_page}/audit/verify"),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("The chain is intact")
    );

    // Pages for what does not exist.
    let (status, _) = session
        .get(
            &platform,
            "/admin-console/tenants/00000000-0000-0000-0000-000000000000",
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = session.get(&platform, "/admin-console/nowhere").await;
    assert_eq!(status, 404);

    // A session cookie the API does not take is a signed-out page that drops it.
    let forged = Session {
        cookie: "edk_console_session=not-a-token".to_owned(),
    };
    let (status, page) = forged.get(&platform, "/admin-console/").await;
    assert_eq!(status, 401);
    assert!(page.contains("Sign in"), "{page}");

    // Deleted through its form: deleted, within its grace period.
    let now = act_on_tenant(
        &session,
        &platform,
        &ops,
        (&tenant_page, "acme"),
        ("delete", &token),
    )
    .await;
    assert_eq!(now, "deleted");

    // Sign out drops the cookie.
    let response = session
        .post(&platform, "/admin-console/logout", &[("csrf", &token)])
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let dropped = set_cookies(&response)["edk_console_session"].clone();
    assert!(dropped.contains("Max-Age=0"), "{dropped}");
    platform.close().await;
}

#[tokio::test]
async fn operators_sign_in_with_pkce_and_manage_tenants_on_sqlite() {
    Box::pin(operators_sign_in_with_pkce_and_manage_tenants(
        Backend::Sqlite,
    ))
    .await;
}

#[tokio::test]
async fn operators_sign_in_with_pkce_and_manage_tenants_on_postgres() {
    Box::pin(operators_sign_in_with_pkce_and_manage_tenants(
        Backend::Postgres,
    ))
    .await;
}

#[tokio::test]
async fn an_operator_uses_the_console_in_chromium() {
    let (platform, _op, ops) = federated_platform(Backend::Sqlite).await;
    let screenshots = std::env::var_os("EDK_CONSOLE_SCREENSHOTS");
    assert!(
        node_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/test --setup-only"
    );
    let seen = run_script(
        "admin_console.mjs",
        &json!({
            "console": platform.url("/admin-console/"),
            "login": "alice",
            "tenant": {"slug": "globex", "display_name": "Globex", "host": "globex.localhost",
                "port": platform.http.addr().port()},
            "screenshots": screenshots.map(|dir| dir.to_string_lossy().into_owned()),
        }),
    )
    .await;
    assert!(seen.get("failure").is_none(), "{seen:#}");
    assert_eq!(seen["errors"], json!([]), "{seen:#}");
    assert_eq!(seen["pages"]["signed_out"], "Sign in");
    assert_eq!(seen["pages"]["after_sign_in"], "Tenants");
    assert_eq!(seen["pages"]["tenant"], "Tenant globex");
    assert_eq!(seen["pages"]["health"], "Health");
    assert_eq!(seen["pages"]["operators"], "Operators");
    assert_eq!(seen["operators"], json!(["alice"]));
    assert_eq!(seen["pages"]["after_sign_out"], "Sign in");
    let session = seen["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|cookie| cookie["name"] == "edk_console_session")
        .unwrap_or_else(|| panic!("no session cookie: {seen:#}"));
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["secure"], true);
    assert_eq!(session["sameSite"], "Lax");
    let steps = seen["steps"].as_array().unwrap();
    assert!(!steps.is_empty(), "{seen:#}");
    assert!(steps.iter().all(|step| step[1] == "done"), "{seen:#}");
    assert!(
        seen["audit_message"]
            .as_str()
            .unwrap()
            .starts_with("The chain is intact"),
        "{seen:#}"
    );
    assert!(seen["audit_records"].as_u64().unwrap() > 0);
    assert_eq!(seen["status_after_suspend"], "suspended");
    let all = tenants(&platform, &ops).await;
    let globex = all
        .iter()
        .find(|tenant| tenant["slug"] == "globex")
        .unwrap();
    assert_eq!(globex["status"], "suspended");
    platform.close().await;
}
