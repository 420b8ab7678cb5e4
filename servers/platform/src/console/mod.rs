//! The admin console: server-rendered pages at [`CONSOLE_PATH`] for operators.
//!
//! The console is a client of the platform's own API. An operator signs in through the
//! operator authorization server (authorization code with PKCE `S256`, as the public client
//! [`CONSOLE_CLIENT_ID`] that [`register_client`] keeps registered for the platform host), and
//! every page is rendered from in-process calls to the admin API with the operator's access
//! token. The API decides what the operator may see and change, exactly as for any other
//! client: the console holds no authority of its own.
//!
//! Safety:
//! - The access token lives only in an `HttpOnly`, `Secure`, `SameSite=Lax` cookie scoped to
//!   the console's path, for the token's lifetime; the login's `state` and PKCE verifier in a
//!   second such cookie for ten minutes.
//! - Every form carries a CSRF token derived from the session (SHA-256 of the access token
//!   under a console label), compared in constant time; a `POST` without it changes nothing.
//! - Pages load nothing from elsewhere and run no script: the Content-Security-Policy allows
//!   the console's own style sheet, inline images and forms posting back to the console only,
//!   and forbids framing.

mod html;

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use poem::endpoint::BoxEndpoint;
use poem::http::{HeaderValue, Method, StatusCode, Uri, header};
use poem::{Endpoint, IntoResponse as _, Request, Response};
use rand::RngExt as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use edk_core::{ClientId, ErrorKind, HasKind as _, TenantId};
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::{AuthorizationServer, NewClient};
use edk_server::path_is_under;
use edk_tenancy::{ServiceType, Tenancy, TenantDirectory as _};

use crate::operators::scope;
use html::{csrf_field, escape, message, page, secured, segment, table};

/// Where the console is served.
pub const CONSOLE_PATH: &str = "/admin-console";

/// The console's client id at the operator authorization server.
pub const CONSOLE_CLIENT_ID: &str = "edk-admin-console";

const SESSION_COOKIE: &str = "edk_console_session";
const LOGIN_COOKIE: &str = "edk_console_login";
const LOGIN_LIFETIME_SECS: u64 = 600;
const FORM_LIMIT: usize = 64 * 1024;
const AUDIT_PAGE: u32 = 50;

/// Why the console client cannot be registered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// The operator realm has no authorization server binding yet.
    #[error("the operator authorization server is not bound to a host")]
    Unbound,
    /// The tenancy refused.
    #[error("the operator realm cannot be read")]
    Tenancy(#[source] edk_tenancy::Error),
    /// The authorization server refused the registration.
    #[error("the console client cannot be registered")]
    Client(#[source] edk_oauth::Error),
}

/// Where the operator authorization server and the console are, read from the operator
/// realm's binding.
struct Location {
    /// The authorization server's issuer identifier, e.g. `https://platform.example/operators`.
    issuer: String,
    /// `host[:port]` of the platform.
    authority: String,
    /// The path of the token endpoint on that host.
    token_path: String,
    /// The console's redirect URI.
    redirect_uri: String,
}

async fn locate(tenancy: &Tenancy, realm: TenantId) -> Result<Location, ConsoleError> {
    let bindings = tenancy
        .bindings(realm)
        .await
        .map_err(ConsoleError::Tenancy)?;
    let binding = bindings
        .iter()
        .find(|binding| binding.service() == ServiceType::As)
        .ok_or(ConsoleError::Unbound)?;
    let issuer = binding.identifier().to_owned();
    let url = url::Url::parse(&issuer).map_err(|_| ConsoleError::Unbound)?;
    let host = url.host_str().ok_or(ConsoleError::Unbound)?;
    let authority = url
        .port()
        .map_or_else(|| host.to_owned(), |port| format!("{host}:{port}"));
    let origin = url.origin().ascii_serialization();
    Ok(Location {
        token_path: format!("{}/token", url.path().trim_end_matches('/')),
        redirect_uri: format!("{origin}{CONSOLE_PATH}/callback"),
        authority,
        issuer,
    })
}

/// Registers the console at the operator authorization server for the platform host it is
/// bound to: a public client (authorization code, PKCE) with the redirect URI
/// `<platform origin>/admin-console/callback` and every platform scope. A registration for
/// another host is replaced; one for this host is kept.
///
/// # Errors
/// [`ConsoleError`] when the realm cannot be read or the client cannot be stored.
pub async fn register_client(
    tenancy: &Tenancy,
    oauth: &AuthorizationServer,
    realm: TenantId,
) -> Result<(), ConsoleError> {
    let location = locate(tenancy, realm).await?;
    let context = tenancy
        .context_for_service(realm, ServiceType::As)
        .await
        .map_err(ConsoleError::Tenancy)?;
    #[expect(
        clippy::expect_used,
        reason = "the console client id is a valid constant"
    )]
    let client_id = ClientId::new(CONSOLE_CLIENT_ID.to_owned()).expect("valid client id");
    match oauth.client(&context, &client_id).await {
        Ok(client) if client.metadata.redirect_uris == [location.redirect_uri.clone()] => {
            return Ok(());
        }
        Ok(_) => oauth
            .delete_client(&context, &client_id)
            .await
            .map_err(ConsoleError::Client)?,
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) => return Err(ConsoleError::Client(err)),
    }
    let mut metadata =
        ClientMetadata::new(ClientAuthMethod::None, vec![GrantType::AuthorizationCode]);
    metadata.redirect_uris = vec![location.redirect_uri];
    metadata.client_name = "EDK admin console".to_owned();
    metadata.scopes = scope::ALL.map(str::to_owned).to_vec();
    match oauth
        .create_client(&context, NewClient::new(metadata).with_id(client_id))
        .await
    {
        Ok(_) => Ok(()),
        // Another replica registered it in the meantime.
        Err(err) if err.kind() == ErrorKind::Conflict => Ok(()),
        Err(err) => Err(ConsoleError::Client(err)),
    }
}

/// The console endpoint, answering every path under [`CONSOLE_PATH`].
pub struct Console {
    api: BoxEndpoint<'static, Response>,
    token: BoxEndpoint<'static, Response>,
    tenancy: Tenancy,
    realm: TenantId,
}

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Console")
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// The console over `api` (the admin surface, with its authentication) and `token` (the
    /// protocol surface serving the operator authorization server of `realm`).
    #[must_use]
    pub fn new(
        api: BoxEndpoint<'static, Response>,
        token: BoxEndpoint<'static, Response>,
        tenancy: Tenancy,
        realm: TenantId,
    ) -> Self {
        Self {
            api,
            token,
            tenancy,
            realm,
        }
    }

    /// Whether `path` is the console's.
    #[must_use]
    pub fn serves(path: &str) -> bool {
        path_is_under(path, CONSOLE_PATH)
    }

    /// The console for its paths, `rest` for every other.
    #[must_use]
    pub fn or<E: Endpoint<Output = Response>>(self, rest: E) -> ConsoleOr<E> {
        ConsoleOr {
            console: self,
            rest,
        }
    }
}

/// The console for its paths, another endpoint for the rest ([`Console::or`]).
#[derive(Debug)]
pub struct ConsoleOr<E> {
    console: Console,
    rest: E,
}

impl<E: Endpoint<Output = Response>> Endpoint for ConsoleOr<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if Console::serves(req.original_uri().path()) {
            self.console.call(req).await
        } else {
            self.rest.call(req).await
        }
    }
}

/// A signed-in operator: the access token of the session cookie.
struct Session {
    token: String,
    csrf: String,
}

impl Session {
    fn new(token: String) -> Self {
        let csrf = csrf_of(&token);
        Self { token, csrf }
    }
}

fn csrf_of(token: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"edk admin console csrf\0");
    digest.update(token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.finalize())
}

fn random() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

fn set_cookie(response: &mut Response, name: &str, value: &str, max_age: u64) {
    let value = format!(
        "{name}={value}; Path={CONSOLE_PATH}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn redirect(to: &str) -> Response {
    secured(
        Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, to)
            .finish(),
    )
}

/// A message shown above a page's content.
struct Flash {
    status: StatusCode,
    kind: &'static str,
    text: String,
}

impl Flash {
    fn notice(text: impl Into<String>) -> Self {
        Self {
            status: StatusCode::OK,
            kind: "notice",
            text: text.into(),
        }
    }

    fn error(status: StatusCode, text: impl Into<String>) -> Self {
        Self {
            status,
            kind: "error",
            text: text.into(),
        }
    }

    /// `answer`'s problem, or `done` when it succeeded.
    fn of(answer: &Answer, done: &str) -> Self {
        if answer.ok() {
            Self::notice(done)
        } else {
            Self::error(answer.status, answer.problem())
        }
    }

    fn render(flash: Option<&Self>) -> (StatusCode, String) {
        flash.map_or((StatusCode::OK, String::new()), |flash| {
            (flash.status, message(flash.kind, &flash.text))
        })
    }
}

/// The answer of an admin API call.
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The problem's `detail` (or `title`) for a page.
    fn problem(&self) -> String {
        let text = |name: &str| self.body.get(name).and_then(Value::as_str);
        let detail = text("detail").or_else(|| text("title"));
        detail.map_or_else(
            || format!("the platform API answered {}", self.status),
            str::to_owned,
        )
    }
}

fn text<'a>(value: &'a Value, name: &str) -> &'a str {
    value.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn state_cell(state: &str) -> String {
    let class: String = state
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    format!(r#"<span class="state-{class}">{}</span>"#, escape(state))
}

fn form_fields(bytes: &[u8]) -> BTreeMap<String, Vec<String>> {
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(bytes) {
        fields
            .entry(key.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    fields
}

fn field<'a>(fields: &'a BTreeMap<String, Vec<String>>, name: &str) -> &'a str {
    fields
        .get(name)
        .and_then(|values| values.first())
        .map_or("", |value| value.trim())
}

impl Endpoint for Console {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let path = req.original_uri().path().to_owned();
        let rest = path
            .strip_prefix(CONSOLE_PATH)
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        let method = req.method().clone();
        if rest == "/static/console.css" && method == Method::GET {
            return Ok(secured(
                html::STYLE
                    .with_content_type("text/css; charset=utf-8")
                    .with_header(header::CACHE_CONTROL, "public, max-age=3600")
                    .into_response(),
            ));
        }
        if rest == "/login" && method == Method::GET {
            return Ok(self.login().await);
        }
        if rest == "/callback" && method == Method::GET {
            return Ok(self.callback(&req).await);
        }
        let session = cookie(&req, SESSION_COOKIE).map(Session::new);
        let Some(session) = session else {
            return Ok(signed_out(StatusCode::OK, None));
        };
        let decoded: Vec<String> = rest
            .split('/')
            .skip(1)
            .map(|segment| {
                percent_encoding::percent_decode_str(segment)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
        if method == Method::GET {
            return Ok(match segments.as_slice() {
                [] => self.tenants(&session, None).await,
                ["health"] => self.health(&session).await,
                ["operators"] => self.operators(&session, None).await,
                ["tenants", id] => self.tenant(&session, id, None).await,
                ["tenants", id, "audit"] => {
                    let after = req
                        .uri()
                        .query()
                        .and_then(|query| {
                            url::form_urlencoded::parse(query.as_bytes())
                                .find(|(key, _)| key == "after")
                                .and_then(|(_, value)| value.parse::<u64>().ok())
                        })
                        .unwrap_or(0);
                    self.audit(&session, id, after, None).await
                }
                _ => not_found(&session),
            });
        }
        if method != Method::POST {
            return Ok(page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                Some(&session.csrf),
                &message("error", "This page answers GET and POST only."),
            ));
        }
        let Ok(body) = req.take_body().into_bytes_limit(FORM_LIMIT).await else {
            return Ok(page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                Some(&session.csrf),
                &message("error", "The form is larger than the console accepts."),
            ));
        };
        let fields = form_fields(&body);
        let sent = field(&fields, "csrf");
        if !bool::from(sent.as_bytes().ct_eq(session.csrf.as_bytes())) {
            return Ok(page(
                StatusCode::FORBIDDEN,
                "Request refused",
                Some(&session.csrf),
                &message(
                    "error",
                    "The form's CSRF token is missing or wrong; nothing was changed. Reload the page and try again.",
                ),
            ));
        }
        Ok(match segments.as_slice() {
            ["logout"] => {
                let mut response = signed_out(StatusCode::OK, Some("You are signed out."));
                set_cookie(&mut response, SESSION_COOKIE, "", 0);
                response
            }
            ["tenants"] => self.create_tenant(&session, &fields).await,
            ["tenants", id, action @ ("suspend" | "resume")] => {
                self.change_tenant(&session, id, action).await
            }
            ["tenants", id, "delete"] => self.delete_tenant(&session, id).await,
            ["tenants", id, "bindings"] => self.put_binding(&session, id, &fields).await,
            ["tenants", id, "config"] => self.put_config(&session, id, &fields).await,
            ["operators", "federated"] => self.allow_operator(&session, &fields).await,
            ["operators", "upstream"] => self.set_upstream(&session, &fields).await,
            ["tenants", id, "audit", "verify"] => self.verify_audit(&session, id).await,
            _ => not_found(&session),
        })
    }
}

fn not_found(session: &Session) -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Not found",
        Some(&session.csrf),
        &message("error", "There is no such console page."),
    )
}

fn signed_out(status: StatusCode, note: Option<&str>) -> Response {
    let note = note.map(|note| message("notice", note)).unwrap_or_default();
    page(
        status,
        "Sign in",
        None,
        &format!(
            r#"{note}<p>Operators sign in through the operator authorization server.</p>
<p><a class="button" href="{CONSOLE_PATH}/login">Sign in</a></p>"#
        ),
    )
}

fn sign_in_failed(status: StatusCode, why: &str) -> Response {
    let mut response = page(
        status,
        "Sign-in failed",
        None,
        &format!(
            r#"{}<p><a class="button" href="{CONSOLE_PATH}/login">Sign in again</a></p>"#,
            message("error", why)
        ),
    );
    set_cookie(&mut response, LOGIN_COOKIE, "", 0);
    response
}

impl Console {
    /// Sends the operator to the authorization server with a fresh `state` and PKCE pair.
    async fn login(&self) -> Response {
        let location = match locate(&self.tenancy, self.realm).await {
            Ok(location) => location,
            Err(err) => {
                tracing::warn!(error = %err, "the admin console cannot locate the operator authorization server");
                return sign_in_failed(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The operator authorization server is not bound to a host yet.",
                );
            }
        };
        let state = random();
        let verifier = random();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let Ok(mut authorize) = url::Url::parse(&format!("{}/authorize", location.issuer)) else {
            return sign_in_failed(
                StatusCode::SERVICE_UNAVAILABLE,
                "The operator authorization server's identifier is not a URL.",
            );
        };
        authorize
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CONSOLE_CLIENT_ID)
            .append_pair("redirect_uri", &location.redirect_uri)
            .append_pair("scope", &scope::ALL.join(" "))
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let mut response = redirect(authorize.as_str());
        set_cookie(
            &mut response,
            LOGIN_COOKIE,
            &format!("{state}.{verifier}"),
            LOGIN_LIFETIME_SECS,
        );
        response
    }

    /// Redeems the code of the authorization server's redirect for the session's token.
    async fn callback(&self, req: &Request) -> Response {
        let query: BTreeMap<String, String> = req
            .uri()
            .query()
            .map(|query| {
                url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let Some((state, verifier)) = cookie(req, LOGIN_COOKIE).and_then(|value| {
            value
                .split_once('.')
                .map(|(s, v)| (s.to_owned(), v.to_owned()))
        }) else {
            return sign_in_failed(
                StatusCode::BAD_REQUEST,
                "This sign-in was not started here, or it took longer than ten minutes.",
            );
        };
        let returned = query.get("state").map(String::as_str).unwrap_or_default();
        if !bool::from(returned.as_bytes().ct_eq(state.as_bytes())) {
            return sign_in_failed(
                StatusCode::BAD_REQUEST,
                "The sign-in's state does not match the one this browser started.",
            );
        }
        if let Some(error) = query.get("error") {
            let description = query
                .get("error_description")
                .map(|text| format!(": {text}"))
                .unwrap_or_default();
            return sign_in_failed(
                StatusCode::FORBIDDEN,
                &format!(
                    "The operator authorization server refused the sign-in ({error}){description}."
                ),
            );
        }
        let Some(code) = query.get("code") else {
            return sign_in_failed(
                StatusCode::BAD_REQUEST,
                "The authorization server's answer has no code.",
            );
        };
        let Ok(location) = locate(&self.tenancy, self.realm).await else {
            return sign_in_failed(
                StatusCode::SERVICE_UNAVAILABLE,
                "The operator authorization server is not bound to a host.",
            );
        };
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &location.redirect_uri)
            .append_pair("client_id", CONSOLE_CLIENT_ID)
            .append_pair("code_verifier", &verifier)
            .finish();
        let Ok(uri) = Uri::try_from(location.token_path.as_str()) else {
            return sign_in_failed(
                StatusCode::SERVICE_UNAVAILABLE,
                "The operator authorization server's token path is not a path.",
            );
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::HOST, location.authority.as_str())
            .content_type("application/x-www-form-urlencoded")
            .body(form);
        let answer = read(self.token.call(request).await).await;
        let token = answer.body.get("access_token").and_then(Value::as_str);
        let (true, Some(token)) = (answer.ok(), token) else {
            let error = text(&answer.body, "error");
            let description = text(&answer.body, "error_description");
            return sign_in_failed(
                StatusCode::FORBIDDEN,
                &format!("The code could not be redeemed ({error}): {description}"),
            );
        };
        let lifetime = answer
            .body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(300);
        let mut response = redirect(&format!("{CONSOLE_PATH}/"));
        set_cookie(&mut response, LOGIN_COOKIE, "", 0);
        set_cookie(&mut response, SESSION_COOKIE, token, lifetime);
        response
    }

    /// Calls the admin API as the session's operator.
    async fn api(
        &self,
        session: &Session,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let Ok(uri) = Uri::try_from(path) else {
            return Answer {
                status: StatusCode::BAD_REQUEST,
                body: json!({"detail": "not a valid path"}),
            };
        };
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", session.token))
            .header(header::ACCEPT, "application/json");
        let request = match body {
            Some(body) => request
                .content_type("application/json")
                .body(body.to_string()),
            None => {
                request = request.header(header::CONTENT_LENGTH, "0");
                request.finish()
            }
        };
        read(self.api.call(request).await).await
    }

    /// A page from `answer`, or its problem; the session cookie is dropped when the API no
    /// longer takes its token.
    fn refused(session: &Session, title: &str, answer: &Answer) -> Response {
        if answer.status == StatusCode::UNAUTHORIZED {
            let mut response = signed_out(
                StatusCode::UNAUTHORIZED,
                Some("Your session has ended. Sign in again."),
            );
            set_cookie(&mut response, SESSION_COOKIE, "", 0);
            return response;
        }
        page(
            answer.status,
            title,
            Some(&session.csrf),
            &message("error", &answer.problem()),
        )
    }

    async fn tenants(&self, session: &Session, error: Option<(StatusCode, String)>) -> Response {
        let answer = self
            .api(session, Method::GET, "/api/platform/v1/tenants", None)
            .await;
        if !answer.ok() {
            return Self::refused(session, "Tenants", &answer);
        }
        let tenants = answer
            .body
            .get("tenants")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = tenants
            .iter()
            .map(|tenant| {
                vec![
                    format!(
                        r#"<a href="{CONSOLE_PATH}/tenants/{}">{}</a>"#,
                        segment(text(tenant, "id")),
                        escape(text(tenant, "slug"))
                    ),
                    escape(text(tenant, "display_name")),
                    state_cell(text(tenant, "status")),
                    escape(text(tenant, "created_at")),
                ]
            })
            .collect();
        let (status, error) = error.map_or((StatusCode::OK, String::new()), |(status, text)| {
            (status, message("error", &text))
        });
        let list = if rows.is_empty() {
            r#"<p class="muted">No tenants yet.</p>"#.to_owned()
        } else {
            table(&["Slug", "Name", "Status", "Created"], &rows)
        };
        let body = format!(
            r#"{error}{list}
<h2>Create a tenant</h2>
<form class="panel" method="post" action="{CONSOLE_PATH}/tenants">{csrf}
<label for="slug">Slug</label><input type="text" id="slug" name="slug" required pattern="[a-z0-9\-]+" placeholder="acme">
<label for="display_name">Name</label><input type="text" id="display_name" name="display_name" required placeholder="Acme Corporation">
<label for="host">Host</label><input type="text" id="host" name="host" required placeholder="acme.example.com">
<label for="port">Port</label><input type="number" id="port" name="port" min="1" max="65535" placeholder="443">
<span>Services</span><span>
<label><input type="checkbox" name="service" value="issuer" checked> Credential issuer</label>
<label><input type="checkbox" name="service" value="verifier" checked> Verifier</label>
<label><input type="checkbox" name="service" value="did" checked> DID publishing</label></span>
<span>Local development</span><label><input type="checkbox" name="loopback_http" value="on"> Advertise http (loopback hosts only)</label>
<span class="actions"><button type="submit">Create and onboard</button></span>
</form>"#,
            csrf = csrf_field(&session.csrf),
        );
        page(status, "Tenants", Some(&session.csrf), &body)
    }

    async fn create_tenant(
        &self,
        session: &Session,
        fields: &BTreeMap<String, Vec<String>>,
    ) -> Response {
        let host = field(fields, "host");
        let port = match field(fields, "port") {
            "" => None,
            port => match port.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => {
                    return self
                        .tenants(
                            session,
                            Some((
                                StatusCode::BAD_REQUEST,
                                "port: not a port number (1 to 65535)".to_owned(),
                            )),
                        )
                        .await;
                }
            },
        };
        let loopback = field(fields, "loopback_http") == "on";
        let mut services = vec!["as".to_owned()];
        for service in fields.get("service").into_iter().flatten() {
            if ["issuer", "verifier", "did"].contains(&service.as_str())
                && !services.contains(service)
            {
                services.push(service.clone());
            }
        }
        let bindings: Vec<Value> = services
            .iter()
            .map(|service| {
                json!({
                    "service": service,
                    "host": host,
                    "port": port,
                    "path_prefix": "/",
                    // did:web is an https method whatever the host.
                    "dangerous_loopback_http": loopback && service != "did",
                })
            })
            .collect();
        let body = json!({
            "slug": field(fields, "slug"),
            "display_name": field(fields, "display_name"),
            "bindings": bindings,
        });
        let answer = self
            .api(
                session,
                Method::POST,
                "/api/platform/v1/tenants",
                Some(body),
            )
            .await;
        if answer.status == StatusCode::UNAUTHORIZED {
            return Self::refused(session, "Tenants", &answer);
        }
        if !answer.ok() {
            return self
                .tenants(session, Some((answer.status, answer.problem())))
                .await;
        }
        redirect(&format!(
            "{CONSOLE_PATH}/tenants/{}",
            segment(text(&answer.body, "id"))
        ))
    }

    async fn tenant(&self, session: &Session, id: &str, flash: Option<Flash>) -> Response {
        let base = format!("/api/platform/v1/tenants/{}", segment(id));
        let answer = self.api(session, Method::GET, &base, None).await;
        if !answer.ok() {
            return Self::refused(session, "Tenant", &answer);
        }
        let tenant = &answer.body;
        let bindings = self
            .api(session, Method::GET, &format!("{base}/bindings"), None)
            .await;
        let steps: Vec<Vec<String>> = tenant
            .get("onboarding")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|step| {
                vec![
                    escape(text(step, "step")),
                    state_cell(text(step, "state")),
                    escape(text(step, "at")),
                    escape(text(step, "error")),
                ]
            })
            .collect();
        let binding_rows: Vec<Vec<String>> = bindings
            .body
            .get("bindings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|binding| {
                vec![
                    escape(text(binding, "service")),
                    format!("<code>{}</code>", escape(text(binding, "url"))),
                ]
            })
            .collect();
        let status = text(tenant, "status");
        let (action, label) = if status == "suspended" {
            ("resume", "Resume")
        } else {
            ("suspend", "Suspend")
        };
        let tenant_path = format!("{CONSOLE_PATH}/tenants/{}", segment(id));
        let mut facts = vec![
            vec![
                "Id".to_owned(),
                format!("<code>{}</code>", escape(text(tenant, "id"))),
            ],
            vec!["Slug".to_owned(), escape(text(tenant, "slug"))],
            vec!["Status".to_owned(), state_cell(status)],
            vec!["Created".to_owned(), escape(text(tenant, "created_at"))],
        ];
        for (label, name) in [
            ("Issuer DID", "issuer_did"),
            ("Credential configuration", "credential_configuration"),
        ] {
            if let Some(value) = tenant.get(name).and_then(Value::as_str) {
                facts.push(vec![
                    label.to_owned(),
                    format!("<code>{}</code>", escape(value)),
                ]);
            }
        }
        let facts: String = facts
            .iter()
            .map(|row| format!("<tr><th>{}</th><td>{}</td></tr>", row[0], row[1]))
            .collect();
        let (status_code, note) = Flash::render(flash.as_ref());
        let steps = if steps.is_empty() {
            r#"<p class="muted">This tenant was not onboarded through the platform.</p>"#.to_owned()
        } else {
            table(&["Step", "State", "At", "Error"], &steps)
        };
        let bindings = if bindings.ok() {
            table(&["Service", "Endpoint"], &binding_rows)
        } else {
            message("error", &bindings.problem())
        };
        let body = format!(
            r#"{note}<table class="facts">{facts}</table>
<p><form class="inline" method="post" action="{tenant_path}/{action}">{csrf}<button type="submit" class="secondary">{label}</button></form>
<a class="button" href="{tenant_path}/audit">Audit events</a>
<form class="inline" method="post" action="{tenant_path}/delete">{csrf}<button type="submit" class="danger">Delete</button></form></p>
<h2>Onboarding</h2>{steps}
<h2>Endpoints</h2>{bindings}
<h2>Change an endpoint</h2>
<form class="panel" method="post" action="{tenant_path}/bindings">{csrf}
<label for="service">Service</label><select id="service" name="service"><option value="as">Authorization server</option><option value="issuer">Credential issuer</option><option value="verifier">Verifier</option><option value="did">DID publishing</option></select>
<label for="host">Host</label><input type="text" id="host" name="host" required>
<label for="port">Port</label><input type="number" id="port" name="port" min="1" max="65535">
<label for="path_prefix">Path prefix</label><input type="text" id="path_prefix" name="path_prefix" value="/" required>
<span>Local development</span><label><input type="checkbox" name="loopback_http" value="on"> Advertise http (loopback hosts only)</label>
<span class="actions"><button type="submit">Bind</button></span>
</form>
<h2>Set a configuration property</h2>
<form class="panel" method="post" action="{tenant_path}/config">{csrf}
<label for="key">Key</label><input type="text" id="key" name="key" required placeholder="oauth.access_token_ttl_secs">
<label for="value">Value (JSON)</label><textarea id="value" name="value" rows="3" required placeholder="600"></textarea>
<span class="actions"><button type="submit">Set</button></span>
</form>"#,
            csrf = csrf_field(&session.csrf),
        );
        page(
            status_code,
            &format!("Tenant {}", text(tenant, "slug")),
            Some(&session.csrf),
            &body,
        )
    }

    async fn delete_tenant(&self, session: &Session, id: &str) -> Response {
        let answer = self
            .api(
                session,
                Method::DELETE,
                &format!("/api/platform/v1/tenants/{}", segment(id)),
                None,
            )
            .await;
        if !answer.ok() {
            return Self::refused(session, "Tenant", &answer);
        }
        redirect(&format!("{CONSOLE_PATH}/tenants/{}", segment(id)))
    }

    async fn put_binding(
        &self,
        session: &Session,
        id: &str,
        fields: &BTreeMap<String, Vec<String>>,
    ) -> Response {
        let service = field(fields, "service");
        let port = match field(fields, "port") {
            "" => None,
            port => match port.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => {
                    let flash = Flash::error(
                        StatusCode::BAD_REQUEST,
                        "port: not a port number (1 to 65535)",
                    );
                    return self.tenant(session, id, Some(flash)).await;
                }
            },
        };
        let body = json!({
            "host": field(fields, "host"),
            "port": port,
            "path_prefix": field(fields, "path_prefix"),
            "dangerous_loopback_http": field(fields, "loopback_http") == "on",
        });
        let answer = self
            .api(
                session,
                Method::PUT,
                &format!(
                    "/api/platform/v1/tenants/{}/bindings/{}",
                    segment(id),
                    segment(service)
                ),
                Some(body),
            )
            .await;
        if answer.status == StatusCode::UNAUTHORIZED {
            return Self::refused(session, "Tenant", &answer);
        }
        let done = format!(
            "The {service} endpoint is now {}.",
            text(&answer.body, "url")
        );
        self.tenant(session, id, Some(Flash::of(&answer, &done)))
            .await
    }

    async fn put_config(
        &self,
        session: &Session,
        id: &str,
        fields: &BTreeMap<String, Vec<String>>,
    ) -> Response {
        let key = field(fields, "key");
        let Ok(value) = serde_json::from_str::<Value>(field(fields, "value")) else {
            let flash = Flash::error(StatusCode::BAD_REQUEST, "value: not a JSON value");
            return self.tenant(session, id, Some(flash)).await;
        };
        let answer = self
            .api(
                session,
                Method::PUT,
                &format!(
                    "/api/platform/v1/tenants/{}/config/{}",
                    segment(id),
                    segment(key)
                ),
                Some(json!({ "value": value })),
            )
            .await;
        if answer.status == StatusCode::UNAUTHORIZED {
            return Self::refused(session, "Tenant", &answer);
        }
        let done = format!(
            "{key} is set (version {}).",
            answer
                .body
                .get("version")
                .map(Value::to_string)
                .unwrap_or_default()
        );
        self.tenant(session, id, Some(Flash::of(&answer, &done)))
            .await
    }

    async fn operators(&self, session: &Session, flash: Option<Flash>) -> Response {
        let answer = self
            .api(
                session,
                Method::GET,
                "/api/platform/v1/operators/federated",
                None,
            )
            .await;
        if !answer.ok() {
            return Self::refused(session, "Operators", &answer);
        }
        let rows: Vec<Vec<String>> = answer
            .body
            .get("operators")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|record| {
                vec![
                    escape(text(record, "subject")),
                    escape(text(record, "email")),
                    escape(text(record, "issuer")),
                    escape(text(record, "created_by")),
                    escape(text(record, "created_at")),
                ]
            })
            .collect();
        let (status, note) = Flash::render(flash.as_ref());
        let list = if rows.is_empty() {
            r#"<p class="muted">No upstream user is allowed yet.</p>"#.to_owned()
        } else {
            table(&["Subject", "Email", "Issuer", "Allowed by", "At"], &rows)
        };
        let body = format!(
            r#"{note}<p>Upstream users allowed to sign in as operators.</p>{list}
<h2>Allow an upstream user</h2>
<form class="panel" method="post" action="{CONSOLE_PATH}/operators/federated">{csrf}
<label for="subject">Subject</label><input type="text" id="subject" name="subject">
<label for="email">Verified email</label><input type="text" id="email" name="email">
<label for="issuer">Upstream issuer</label><input type="text" id="issuer" name="issuer" placeholder="the configured upstream">
<span class="actions"><button type="submit">Allow</button></span>
</form>
<h2>Upstream OpenID Provider</h2>
<form class="panel" method="post" action="{CONSOLE_PATH}/operators/upstream">{csrf}
<label for="up_issuer">Issuer</label><input type="text" id="up_issuer" name="issuer" required placeholder="https://login.example.com">
<label for="client_id">Client id</label><input type="text" id="client_id" name="client_id" required>
<label for="client_secret">Client secret</label><input type="password" id="client_secret" name="client_secret" autocomplete="off">
<label for="scopes">Scopes</label><input type="text" id="scopes" name="scopes" placeholder="openid email">
<span class="actions"><button type="submit">Save</button></span>
</form>"#,
            csrf = csrf_field(&session.csrf),
        );
        page(status, "Operators", Some(&session.csrf), &body)
    }

    async fn allow_operator(
        &self,
        session: &Session,
        fields: &BTreeMap<String, Vec<String>>,
    ) -> Response {
        let mut record = serde_json::Map::new();
        for name in ["subject", "email", "issuer"] {
            let value = field(fields, name);
            if !value.is_empty() {
                record.insert(name.to_owned(), Value::String(value.to_owned()));
            }
        }
        let answer = self
            .api(
                session,
                Method::POST,
                "/api/platform/v1/operators/federated",
                Some(Value::Object(record)),
            )
            .await;
        if answer.status == StatusCode::UNAUTHORIZED {
            return Self::refused(session, "Operators", &answer);
        }
        self.operators(
            session,
            Some(Flash::of(&answer, "The upstream user is allowed.")),
        )
        .await
    }

    async fn set_upstream(
        &self,
        session: &Session,
        fields: &BTreeMap<String, Vec<String>>,
    ) -> Response {
        let mut body = json!({
            "issuer": field(fields, "issuer"),
            "client_id": field(fields, "client_id"),
        });
        let secret = field(fields, "client_secret");
        if !secret.is_empty() {
            body["client_secret"] = Value::String(secret.to_owned());
        }
        let scopes: Vec<&str> = field(fields, "scopes").split_whitespace().collect();
        if !scopes.is_empty() {
            body["scopes"] = json!(scopes);
        }
        let answer = self
            .api(
                session,
                Method::PUT,
                "/api/platform/v1/operators/upstream-oidc",
                Some(body),
            )
            .await;
        if answer.status == StatusCode::UNAUTHORIZED {
            return Self::refused(session, "Operators", &answer);
        }
        self.operators(
            session,
            Some(Flash::of(&answer, "The upstream provider is saved.")),
        )
        .await
    }

    async fn change_tenant(&self, session: &Session, id: &str, action: &str) -> Response {
        let answer = self
            .api(
                session,
                Method::POST,
                &format!("/api/platform/v1/tenants/{}/{action}", segment(id)),
                None,
            )
            .await;
        if !answer.ok() {
            return Self::refused(session, "Tenant", &answer);
        }
        redirect(&format!("{CONSOLE_PATH}/tenants/{}", segment(id)))
    }

    async fn audit(
        &self,
        session: &Session,
        id: &str,
        after: u64,
        report: Option<&Answer>,
    ) -> Response {
        let answer = self
            .api(
                session,
                Method::GET,
                &format!(
                    "/api/platform/v1/tenants/{}/audit/events?after={after}&limit={AUDIT_PAGE}",
                    segment(id)
                ),
                None,
            )
            .await;
        if !answer.ok() {
            return Self::refused(session, "Audit events", &answer);
        }
        let rows: Vec<Vec<String>> = answer
            .body
            .get("events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|event| {
                vec![
                    event.get("seq").map(Value::to_string).unwrap_or_default(),
                    escape(text(event, "at")),
                    escape(text(event, "operation")),
                    escape(text(event, "alias")),
                    escape(text(event, "actor")),
                    state_cell(text(event, "outcome")),
                ]
            })
            .collect();
        let tenant_path = format!("{CONSOLE_PATH}/tenants/{}", segment(id));
        let next = answer
            .body
            .get("next_after")
            .and_then(Value::as_u64)
            .map(|next| {
                format!(r#"<p><a class="button" href="{tenant_path}/audit?after={next}">Next page</a></p>"#)
            })
            .unwrap_or_default();
        let report = report.map_or_else(String::new, |report| {
            if !report.ok() {
                return message("error", &report.problem());
            }
            let records = report
                .body
                .get("records")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if report.body.get("intact") == Some(&Value::Bool(true)) {
                message(
                    "notice",
                    &format!("The chain is intact: {records} records checked."),
                )
            } else {
                message(
                    "error",
                    &format!(
                        "The chain is broken at record {}: {}.",
                        report
                            .body
                            .get("first_bad_seq")
                            .map(Value::to_string)
                            .unwrap_or_default(),
                        text(&report.body, "problem")
                    ),
                )
            }
        });
        let events = if rows.is_empty() {
            r#"<p class="muted">No records.</p>"#.to_owned()
        } else {
            table(
                &["#", "At", "Operation", "Alias", "Actor", "Outcome"],
                &rows,
            )
        };
        let body = format!(
            r#"{report}<p><a href="{tenant_path}">Back to the tenant</a></p>
<form method="post" action="{tenant_path}/audit/verify">{csrf}<button type="submit">Verify the chain</button></form>
<h2>Records</h2>{events}{next}"#,
            csrf = csrf_field(&session.csrf),
        );
        page(StatusCode::OK, "Audit events", Some(&session.csrf), &body)
    }

    async fn verify_audit(&self, session: &Session, id: &str) -> Response {
        let report = self
            .api(
                session,
                Method::POST,
                &format!("/api/platform/v1/tenants/{}/audit/verify", segment(id)),
                None,
            )
            .await;
        if report.status == StatusCode::UNAUTHORIZED {
            return Self::refused(session, "Audit events", &report);
        }
        self.audit(session, id, 0, Some(&report)).await
    }

    async fn health(&self, session: &Session) -> Response {
        let answer = self.api(session, Method::GET, "/health/ready", None).await;
        let checks: Vec<Vec<String>> = answer
            .body
            .get("checks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|check| {
                let ok = check.get("ok") == Some(&Value::Bool(true));
                vec![
                    escape(text(check, "name")),
                    state_cell(if ok { "ok" } else { "unavailable" }),
                    escape(text(check, "reason")),
                ]
            })
            .collect();
        let overall = text(&answer.body, "status");
        let body = format!(
            "<p>Readiness: {}</p>{}",
            state_cell(if overall.is_empty() {
                "unavailable"
            } else {
                overall
            }),
            table(&["Check", "State", "Reason"], &checks)
        );
        page(StatusCode::OK, "Health", Some(&session.csrf), &body)
    }
}

/// The status and JSON body of an in-process call.
async fn read(result: poem::Result<Response>) -> Answer {
    let response = result.unwrap_or_else(poem::Error::into_response);
    let status = response.status();
    let body = response
        .into_body()
        .into_bytes_limit(4 * 1024 * 1024)
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    Answer { status, body }
}
