//! Credential offer URIs as QR codes, the form an operator shows a wallet: PNG or SVG.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type as _;
use qrcode::{Color, EcLevel, QrCode};

/// The media type of PNG images.
pub const PNG: &str = "image/png";
/// The media type of SVG images.
pub const SVG: &str = "image/svg+xml";

/// Pixels per QR module in a PNG.
const MODULE_PIXELS: usize = 8;
/// The light border around the code, in modules (ISO/IEC 18004 asks for four).
const QUIET_ZONE: usize = 4;

/// The image formats of a QR code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QrFormat {
    /// `image/png`: an 8-bit greyscale PNG, eight pixels per module.
    Png,
    /// `image/svg+xml`.
    Svg,
}

impl QrFormat {
    /// The format a `format` query parameter (`png` or `svg`) names, or else the one the
    /// `Accept` header prefers (PNG unless SVG is preferred or the only one accepted).
    ///
    /// # Errors
    /// The reason, when `format` names another format or `Accept` accepts neither.
    pub fn negotiate(format: Option<&str>, accept: Option<&str>) -> Result<Self, &'static str> {
        match format {
            Some("png") => return Ok(Self::Png),
            Some("svg") => return Ok(Self::Svg),
            Some(_) => return Err("format must be png or svg"),
            None => {}
        }
        match edk_server::negotiate::negotiate(accept, &[PNG, SVG]) {
            Some(SVG) => Ok(Self::Svg),
            Some(_) => Ok(Self::Png),
            None => Err("the Accept header accepts neither image/png nor image/svg+xml"),
        }
    }
}

/// Why a QR code could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QrError {
    /// The text does not fit in a QR code.
    #[error("the offer URI does not fit in a QR code")]
    TooLong(#[source] qrcode::types::QrError),
    /// Encoding the PNG failed.
    #[error("encoding the PNG failed")]
    Png(#[source] png::EncodingError),
}

impl edk_core::HasKind for QrError {
    fn kind(&self) -> edk_core::ErrorKind {
        match self {
            Self::TooLong(_) => edk_core::ErrorKind::InvalidInput,
            Self::Png(_) => edk_core::ErrorKind::Internal,
        }
    }
}

/// A QR code image of `text` in `format` (error correction level M).
///
/// # Errors
/// [`QrError`] when the text is too long or the PNG cannot be encoded.
pub fn render(text: &str, format: QrFormat) -> Result<QrImage, QrError> {
    let code = QrCode::with_error_correction_level(text, EcLevel::M).map_err(QrError::TooLong)?;
    match format {
        QrFormat::Svg => Ok(QrImage::Svg(
            code.render::<qrcode::render::svg::Color<'_>>()
                .quiet_zone(true)
                .min_dimensions(256, 256)
                .build(),
        )),
        QrFormat::Png => png_of(&code).map(QrImage::Png),
    }
}

fn png_of(code: &QrCode) -> Result<Vec<u8>, QrError> {
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * MODULE_PIXELS;
    let mut pixels = vec![0xff_u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (x, y) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
        for row in y * MODULE_PIXELS..(y + 1) * MODULE_PIXELS {
            let start = row * side + x * MODULE_PIXELS;
            if let Some(run) = pixels.get_mut(start..start + MODULE_PIXELS) {
                run.fill(0);
            }
        }
    }
    let side = u32::try_from(side).unwrap_or(u32::MAX);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    let mut writer = encoder.write_header().map_err(QrError::Png)?;
    writer.write_image_data(&pixels).map_err(QrError::Png)?;
    writer.finish().map_err(QrError::Png)?;
    Ok(out)
}

/// A QR code image, answered with its media type.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QrImage {
    /// A PNG.
    Png(Vec<u8>),
    /// An SVG document.
    Svg(String),
}

impl IntoResponse for QrImage {
    fn into_response(self) -> Response {
        let (content_type, body) = match self {
            Self::Png(bytes) => (PNG, bytes),
            Self::Svg(text) => (SVG, text.into_bytes()),
        };
        Response::builder()
            .status(StatusCode::OK)
            .content_type(content_type)
            .header("cache-control", "no-store")
            .body(body)
    }
}

impl ApiResponse for QrImage {
    fn meta() -> MetaResponses {
        let schema = poem_openapi::types::Binary::<Vec<u8>>::schema_ref();
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The offer URI as a QR code: PNG or SVG.",
                status: Some(200),
                status_range: None,
                content: vec![
                    MetaMediaType {
                        content_type: PNG,
                        schema: schema.clone(),
                    },
                    MetaMediaType {
                        content_type: SVG,
                        schema,
                    },
                ],
                headers: vec![],
            }],
        }
    }

    fn register(_registry: &mut Registry) {}
}
