//! Content negotiation on the `Accept` header (RFC 9110 §12.5.1).

/// The quality `accept` gives to media type `media` (lowercase `type/subtype`): that of the
/// most specific range matching it (`type/subtype` before `type/*` before `*/*`), the highest
/// when one range appears twice. `None` when no range matches, `Some(0.0)` when the client
/// refuses the type.
#[must_use]
pub fn media_quality(accept: &str, media: &str) -> Option<f32> {
    let family = media.split_once('/').map_or(media, |(family, _)| family);
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let specificity = match name.split_once('/') {
            _ if name == media => 2,
            Some((range_family, "*")) if range_family == family => 1,
            Some(("*", "*")) => 0,
            _ => continue,
        };
        let quality = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .filter(|q| (0.0..=1.0).contains(q))
            .unwrap_or(1.0);
        best = match best {
            Some((known, q)) if known > specificity || (known == specificity && q >= quality) => {
                Some((known, q))
            }
            _ => Some((specificity, quality)),
        };
    }
    best.map(|(_, quality)| quality)
}

/// Of `offered` media types (the server's preference first), the one `accept` rates highest
/// with a quality above zero; the first when `accept` is absent or empty; `None` when it
/// accepts none of them.
#[must_use]
pub fn negotiate<'a>(accept: Option<&str>, offered: &[&'a str]) -> Option<&'a str> {
    let Some(accept) = accept.filter(|accept| !accept.trim().is_empty()) else {
        return offered.first().copied();
    };
    let mut chosen: Option<(&str, f32)> = None;
    for media in offered {
        if let Some(quality) = media_quality(accept, media).filter(|q| *q > 0.0)
            && chosen.is_none_or(|(_, best)| quality > best)
        {
            chosen = Some((media, quality));
        }
    }
    chosen.map(|(media, _)| media)
}

#[cfg(test)]
mod tests {
    use super::{media_quality, negotiate};

    #[test]
    fn the_most_specific_range_sets_the_quality() {
        let accept = "application/jwt;q=0.5, application/*;q=0.8, */*;q=0.1";
        assert_eq!(media_quality(accept, "application/jwt"), Some(0.5));
        assert_eq!(media_quality(accept, "application/json"), Some(0.8));
        assert_eq!(media_quality(accept, "image/png"), Some(0.1));
        assert_eq!(media_quality("text/html", "image/png"), None);
        assert_eq!(media_quality("image/png;q=0", "image/png"), Some(0.0));
        assert_eq!(media_quality("IMAGE/PNG; q=0.3", "image/png"), Some(0.3));
    }

    #[test]
    fn negotiation_takes_the_best_rated_offer_in_preference_order() {
        let offered = ["application/json", "application/jwt"];
        assert_eq!(negotiate(None, &offered), Some("application/json"));
        assert_eq!(negotiate(Some(" "), &offered), Some("application/json"));
        assert_eq!(negotiate(Some("*/*"), &offered), Some("application/json"));
        assert_eq!(
            negotiate(Some("application/jwt, application/json;q=0.9"), &offered),
            Some("application/jwt")
        );
        assert_eq!(
            negotiate(Some("application/jwt, application/json"), &offered),
            Some("application/json")
        );
        assert_eq!(
            negotiate(Some("application/jwt"), &offered),
            Some("application/jwt")
        );
        assert_eq!(negotiate(Some("text/html"), &offered), None);
        assert_eq!(negotiate(Some("*/*;q=0"), &offered), None);
    }
}
