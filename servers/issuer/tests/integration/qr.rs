//! `GET /api/oid4vci/v1/offers/{id}/qr`: the offer URI as a QR code, PNG or SVG, decoded
//! back with `rqrr` to the very URI the offer answered.

use serde_json::Value;

use crate::flow::on_both_backends;
use crate::support::{Deployment, Tenant, http};

/// `GET /offers/{session_id}/qr` with `query` and `accept`: status, content type, body.
async fn qr(
    deployment: &Deployment,
    tenant: &Tenant,
    session_id: &str,
    query: &str,
    accept: Option<&str>,
) -> (u16, String, Vec<u8>) {
    let token = deployment.admin_token(tenant.id, "oid4vci:read").await;
    let mut request = http()
        .get(
            deployment
                .issuer_http
                .url(&format!("/api/oid4vci/v1/offers/{session_id}/qr{query}")),
        )
        .bearer_auth(token);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, media, response.bytes().await.unwrap().to_vec())
}

/// The text of the one QR code in a PNG.
fn decode_png(bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(frame.color_type, png::ColorType::Grayscale);
    let (width, height) = (frame.width as usize, frame.height as usize);
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

fn problem_detail(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body).unwrap()["detail"].clone()
}

async fn an_open_offer_is_shown_as_a_qr_code_that_decodes_to_its_uri(deployment: Deployment) {
    let tenant = deployment.tenant("acme").await;
    deployment.configure(&tenant).await;
    for by_reference in [false, true] {
        let offer = deployment.offer(&tenant, by_reference).await;
        let session_id = offer["session_id"].as_str().unwrap();
        let uri = offer["credential_offer_uri"].as_str().unwrap();
        for (query, accept) in [
            ("", None),
            ("", Some("image/png")),
            ("", Some("*/*")),
            ("?format=png", Some("image/svg+xml")),
        ] {
            let (status, media, body) = qr(&deployment, &tenant, session_id, query, accept).await;
            assert_eq!(
                (status, media.as_str()),
                (200, "image/png"),
                "{query} {accept:?}"
            );
            assert_eq!(decode_png(&body), uri);
        }
        for (query, accept) in [
            ("?format=svg", None),
            ("", Some("image/svg+xml")),
            ("", Some("image/png;q=0.5, image/svg+xml")),
        ] {
            let (status, media, body) = qr(&deployment, &tenant, session_id, query, accept).await;
            assert_eq!(
                (status, media.as_str()),
                (200, "image/svg+xml"),
                "{query} {accept:?}"
            );
            let svg = String::from_utf8(body).unwrap();
            assert!(svg.starts_with("<?xml"), "{svg}");
            assert!(svg.contains("<svg"), "{svg}");
        }
    }

    let offer = deployment.offer(&tenant, false).await;
    let session_id = offer["session_id"].as_str().unwrap();
    let (status, _, body) = qr(&deployment, &tenant, session_id, "?format=gif", None).await;
    assert_eq!(status, 400);
    assert_eq!(problem_detail(&body), "format must be png or svg");
    let (status, _, body) = qr(&deployment, &tenant, session_id, "", Some("text/html")).await;
    assert_eq!(status, 400);
    assert_eq!(
        problem_detail(&body),
        "the Accept header accepts neither image/png nor image/svg+xml"
    );

    // Once the session is cancelled, the offer is no longer shown.
    let (status, _) = deployment
        .admin(
            &tenant,
            reqwest::Method::POST,
            &format!("/sessions/{session_id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, body) = qr(&deployment, &tenant, session_id, "", None).await;
    assert_eq!(status, 409);
    assert_eq!(
        problem_detail(&body),
        "the offer is no longer open: it was used, cancelled or has lapsed"
    );
    let (status, _, _) = qr(
        &deployment,
        &tenant,
        "00000000-0000-4000-8000-000000000000",
        "",
        None,
    )
    .await;
    assert_eq!(status, 404);
    deployment.close().await;
}
on_both_backends!(an_open_offer_is_shown_as_a_qr_code_that_decodes_to_its_uri);
