//! Same-device flows: a request made with a `redirect_uri` is answered at the `response_uri`
//! with `{"redirect_uri": "<redirect_uri>#response_code=…"}`, and its session is read only
//! with that code, once: without it, with another session's code, with a made-up one or a
//! second time, the read is refused. A presentation that fails verification also sends the
//! person back, and the code then reads the failure.

use edk_core::jose::{Algorithm, SigningKey};
use reqwest::Method;
use serde_json::{Value, json};

use crate::flow::{
    answer, by_value, issue, make_request, pki, post, present, present_and_post, provision,
};
use crate::support::{Deployment, Tenant, identity_query};

const BACK: &str = "https://shop.example/checkout/done";

async fn read(
    deployment: &Deployment,
    tenant: &Tenant,
    id: &str,
    code: Option<&str>,
) -> (u16, Value) {
    let path = match code {
        Some(code) => format!("/sessions/{id}?response_code={code}"),
        None => format!("/sessions/{id}"),
    };
    deployment.admin(tenant, Method::GET, &path, None).await
}

/// The `response_code` of a redirect the response endpoint answered with.
fn code_of(reply: &Value) -> String {
    let redirect = reply["redirect_uri"].as_str().unwrap();
    let code = redirect
        .strip_prefix(&format!("{BACK}#response_code="))
        .unwrap_or_else(|| panic!("{redirect}"));
    assert!(code.len() >= 43, "{code}");
    code.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_result_of_a_same_device_flow_is_read_once_with_its_response_code() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let issuer = pki("issuer");
    provision(&deployment, &acme, &issuer).await;
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let credential = issue(&issuer, &holder).await;
    let same_device = json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri",
                             "redirect_uri": BACK, "correlation_id": "basket-7"});

    let made = make_request(&deployment, &acme, same_device.clone()).await;
    let id = made["session_id"].as_str().unwrap();
    // Before any answer the session is not readable without a code either.
    let (status, refused) = read(&deployment, &acme, id, None).await;
    assert_eq!(status, 403, "{refused}");

    let request = by_value(&made);
    let aud = request.client_id.as_ref().unwrap().to_string();
    let (status, reply) = present_and_post(
        &request,
        &credential,
        &holder,
        &["given_name", "family_name"],
        &aud,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let code = code_of(&reply);

    // Without the code, with a made-up one: refused.
    for wrong in [None, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")] {
        let (status, refused) = read(&deployment, &acme, id, wrong).await;
        assert_eq!(status, 403, "{refused}");
        assert!(refused.get("claims").is_none(), "{refused}");
    }
    let (status, by_correlation) = deployment
        .admin(
            &acme,
            Method::GET,
            "/sessions?correlation_id=basket-7",
            None,
        )
        .await;
    assert_eq!(status, 403, "{by_correlation}");

    // Another same-device session's code does not read this one.
    let mut other_request = same_device.clone();
    other_request["correlation_id"] = json!("basket-8");
    let other = make_request(&deployment, &acme, other_request).await;
    let other_id = other["session_id"].as_str().unwrap();
    let wrong_request = by_value(&other);
    let presentation = present(
        &credential,
        &holder,
        &["given_name", "family_name"],
        &aud,
        "a nonce of no request",
    )
    .await;
    // A presentation that fails verification sends the person back too.
    let (status, reply) = post(
        &wrong_request,
        answer(presentation, wrong_request.state.clone()).to_form(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let other_code = code_of(&reply);
    let (status, refused) = read(&deployment, &acme, id, Some(&other_code)).await;
    assert_eq!(status, 403, "{refused}");

    // The right code reads the result, once.
    let (status, verified) = read(&deployment, &acme, id, Some(&code)).await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["status"], "verified", "{verified}");
    assert_eq!(verified["claims"]["identity"][0]["given_name"], "Erika");
    let (status, again) = read(&deployment, &acme, id, Some(&code)).await;
    assert_eq!(status, 403, "{again}");

    // The other session's code reads its failure, by correlation id.
    let (status, failed) = deployment
        .admin(
            &acme,
            Method::GET,
            &format!("/sessions?correlation_id=basket-8&response_code={other_code}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["id"], other_id);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["error"], "invalid_request", "{failed}");

    // A session made without a redirect_uri has no response code.
    let cross_device = make_request(
        &deployment,
        &acme,
        json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri"}),
    )
    .await;
    let (status, refused) = read(
        &deployment,
        &acme,
        cross_device["session_id"].as_str().unwrap(),
        Some(&code),
    )
    .await;
    assert_eq!(status, 400, "{refused}");

    // Redirects that are not https URLs, or carry a fragment, are refused.
    for bad in [
        "http://shop.example/done",
        "https://shop.example/done#x",
        "shop.example/done",
        "javascript:alert(1)",
    ] {
        let (status, problem) = deployment
            .admin(
                &acme,
                Method::POST,
                "/requests",
                Some(json!({"dcql_query": identity_query(), "redirect_uri": bad})),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
    deployment.close().await;
}
