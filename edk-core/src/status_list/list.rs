//! The status list itself: packed statuses, their ZLIB compression and JSON form
//! (Status List §4).

use std::fmt;
use std::io::Write as _;

use flate2::{Compression, Decompress, FlushDecompress, Status};
use serde::{Deserialize, Serialize};

use super::StatusListError;
use crate::encoding::{b64url_decode, b64url_encode};
use crate::limits::Limits;

/// How many bits each status takes (Status List §4.1): 1, 2, 4 or 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Bits {
    /// One bit: VALID or INVALID.
    One,
    /// Two bits: up to four values, enough for SUSPENDED.
    Two,
    /// Four bits: up to sixteen values.
    Four,
    /// Eight bits: up to 256 values.
    Eight,
}

impl Bits {
    /// Every size, smallest first.
    pub const ALL: [Self; 4] = [Self::One, Self::Two, Self::Four, Self::Eight];

    /// The number of bits.
    #[must_use]
    pub const fn get(self) -> u8 {
        match self {
            Self::One => 1,
            Self::Two => 2,
            Self::Four => 4,
            Self::Eight => 8,
        }
    }

    /// The size with `bits` bits, if it is 1, 2, 4 or 8.
    #[must_use]
    pub const fn new(bits: u8) -> Option<Self> {
        match bits {
            1 => Some(Self::One),
            2 => Some(Self::Two),
            4 => Some(Self::Four),
            8 => Some(Self::Eight),
            _ => None,
        }
    }

    /// The largest status value that fits.
    #[must_use]
    pub const fn max_value(self) -> u8 {
        match self {
            Self::One => 0x01,
            Self::Two => 0x03,
            Self::Four => 0x0f,
            Self::Eight => 0xff,
        }
    }

    /// How many statuses one byte holds.
    #[must_use]
    pub const fn per_byte(self) -> usize {
        match self {
            Self::One => 8,
            Self::Two => 4,
            Self::Four => 2,
            Self::Eight => 1,
        }
    }
}

impl fmt::Display for Bits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

impl TryFrom<u8> for Bits {
    type Error = StatusListError;

    fn try_from(bits: u8) -> Result<Self, Self::Error> {
        Self::new(bits).ok_or(StatusListError::InvalidBits(bits))
    }
}

impl From<Bits> for u8 {
    fn from(bits: Bits) -> Self {
        bits.get()
    }
}

/// A status value (Status List §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusType {
    /// `0x00`: the Referenced Token is valid.
    Valid,
    /// `0x01`: the Referenced Token is revoked, annulled or otherwise invalid, for good.
    Invalid,
    /// `0x02`: the Referenced Token is temporarily invalid. Needs `bits` ≥ 2.
    Suspended,
    /// `0x03` or `0x0C`–`0x0F`: a value whose meaning the application defines.
    ApplicationSpecific(u8),
    /// Any other value: reserved for future registration.
    Reserved(u8),
}

impl StatusType {
    /// The status value.
    #[must_use]
    pub const fn value(self) -> u8 {
        match self {
            Self::Valid => 0x00,
            Self::Invalid => 0x01,
            Self::Suspended => 0x02,
            Self::ApplicationSpecific(value) | Self::Reserved(value) => value,
        }
    }

    /// Whether the status is [`StatusType::Valid`].
    #[must_use]
    pub const fn is_valid(self) -> bool {
        matches!(self, Self::Valid)
    }
}

impl From<u8> for StatusType {
    fn from(value: u8) -> Self {
        match value {
            0x00 => Self::Valid,
            0x01 => Self::Invalid,
            0x02 => Self::Suspended,
            0x03 | 0x0c..=0x0f => Self::ApplicationSpecific(value),
            _ => Self::Reserved(value),
        }
    }
}

impl From<StatusType> for u8 {
    fn from(status: StatusType) -> Self {
        status.value()
    }
}

/// A status list: `bits`-wide statuses packed into bytes (Status List §4.1).
///
/// Status `i` sits in byte `i * bits / 8`, starting at bit `(i * bits) % 8` counted from the
/// least significant bit. A new list is all VALID (0x00), the value the specification
/// recommends as the most common one (Status List §13.3).
///
/// ```
/// use edk_core::status_list::{Bits, StatusList, StatusType};
///
/// let mut list = StatusList::new(Bits::Two, 1_000);
/// list.set_status(7, StatusType::Suspended)?;
/// let encoded = list.encode()?;
/// let decoded = encoded.decode(&edk_core::Limits::DEFAULT)?;
/// assert_eq!(decoded.status(7)?, StatusType::Suspended);
/// assert_eq!(decoded.status(8)?, StatusType::Valid);
/// # Ok::<(), edk_core::status_list::StatusListError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StatusList {
    bits: Bits,
    bytes: Vec<u8>,
}

impl StatusList {
    /// A list of at least `len` VALID statuses. The byte array is rounded up to whole bytes,
    /// so [`StatusList::len`] may exceed `len` by up to `8 / bits - 1`.
    #[must_use]
    pub fn new(bits: Bits, len: usize) -> Self {
        Self {
            bits,
            bytes: vec![0; len.div_ceil(bits.per_byte())],
        }
    }

    /// A list over an existing byte array (the decompressed `lst`).
    #[must_use]
    pub const fn from_bytes(bits: Bits, bytes: Vec<u8>) -> Self {
        Self { bits, bytes }
    }

    /// The bits per status.
    #[must_use]
    pub const fn bits(&self) -> Bits {
        self.bits
    }

    /// How many statuses the byte array holds.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.bytes.len().saturating_mul(self.bits.per_byte())
    }

    /// Whether the list holds no status at all.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The uncompressed byte array.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The status value at `index` (Status List §4.1, §8.3 step 6).
    ///
    /// # Errors
    /// [`StatusListError::IndexOutOfRange`] when `index` is past the end of the list.
    pub fn get(&self, index: usize) -> Result<u8, StatusListError> {
        let (byte, shift) = self.position(index)?;
        Ok((byte >> shift) & self.bits.max_value())
    }

    /// The status at `index`.
    ///
    /// # Errors
    /// [`StatusListError::IndexOutOfRange`] when `index` is past the end of the list.
    pub fn status(&self, index: usize) -> Result<StatusType, StatusListError> {
        self.get(index).map(StatusType::from)
    }

    /// Sets the status value at `index`.
    ///
    /// # Errors
    /// [`StatusListError::IndexOutOfRange`] when `index` is past the end of the list and
    /// [`StatusListError::ValueOutOfRange`] when `value` needs more than `bits` bits.
    pub fn set(&mut self, index: usize, value: u8) -> Result<(), StatusListError> {
        let bits = self.bits;
        if value > bits.max_value() {
            return Err(StatusListError::ValueOutOfRange { value, bits });
        }
        let len = self.len();
        let per_byte = bits.per_byte();
        let shift = shift_of(bits, index);
        let byte = self
            .bytes
            .get_mut(index / per_byte)
            .ok_or(StatusListError::IndexOutOfRange { index, len })?;
        *byte = (*byte & !(bits.max_value() << shift)) | (value << shift);
        Ok(())
    }

    /// Sets the status at `index`.
    ///
    /// # Errors
    /// As [`StatusList::set`]; SUSPENDED needs at least two bits.
    pub fn set_status(&mut self, index: usize, status: StatusType) -> Result<(), StatusListError> {
        self.set(index, status.value())
    }

    /// Compresses the byte array with DEFLATE in ZLIB format at the highest level
    /// (Status List §4.1 step 4).
    ///
    /// # Errors
    /// [`StatusListError::Compression`] if the compressor fails.
    pub fn compress(&self) -> Result<Vec<u8>, StatusListError> {
        let mut encoder = flate2::write::ZlibEncoder::new(
            Vec::with_capacity(self.bytes.len() / 8 + 64),
            Compression::best(),
        );
        encoder
            .write_all(&self.bytes)
            .map_err(StatusListError::Compression)?;
        encoder.finish().map_err(StatusListError::Compression)
    }

    /// Decompresses a ZLIB byte array into a list, refusing to inflate past
    /// `limits.max_status_list_bytes` (a compression bomb is stopped there, not after).
    ///
    /// The input must be exactly one complete ZLIB stream whose Adler-32 checks.
    ///
    /// # Errors
    /// [`StatusListError::TooLarge`] or [`StatusListError::InvalidCompression`].
    pub fn decompress(bits: Bits, zlib: &[u8], limits: &Limits) -> Result<Self, StatusListError> {
        let limit = limits.max_status_list_bytes;
        let mut inflater = Decompress::new(true);
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            if bytes.len() == bytes.capacity() {
                if bytes.len() > limit {
                    return Err(StatusListError::TooLarge { limit });
                }
                // Grow geometrically, never past one byte over the limit.
                let room = (limit - bytes.len() + 1).min(bytes.len().max(64 * 1024));
                bytes.reserve_exact(room);
            }
            let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
            let consumed = usize::try_from(before_in).unwrap_or(usize::MAX);
            let input = zlib.get(consumed..).unwrap_or_default();
            let status = inflater
                .decompress_vec(input, &mut bytes, FlushDecompress::None)
                .map_err(|_| StatusListError::InvalidCompression)?;
            match status {
                Status::StreamEnd => break,
                // No progress with room to write: the stream is cut short.
                Status::Ok | Status::BufError
                    if inflater.total_in() == before_in && inflater.total_out() == before_out =>
                {
                    return Err(StatusListError::InvalidCompression);
                }
                Status::Ok | Status::BufError => {}
            }
        }
        if bytes.len() > limit {
            return Err(StatusListError::TooLarge { limit });
        }
        if usize::try_from(inflater.total_in()).ok() != Some(zlib.len()) {
            return Err(StatusListError::InvalidCompression);
        }
        Ok(Self { bits, bytes })
    }

    /// The JSON form (Status List §4.2): `bits` and the compressed, base64url-encoded `lst`.
    ///
    /// # Errors
    /// [`StatusListError::Compression`] if the compressor fails.
    pub fn encode(&self) -> Result<EncodedStatusList, StatusListError> {
        Ok(EncodedStatusList {
            bits: self.bits,
            lst: b64url_encode(self.compress()?),
            aggregation_uri: None,
        })
    }

    fn position(&self, index: usize) -> Result<(u8, u32), StatusListError> {
        let byte = self.bytes.get(index / self.bits.per_byte()).ok_or(
            StatusListError::IndexOutOfRange {
                index,
                len: self.len(),
            },
        )?;
        Ok((*byte, shift_of(self.bits, index)))
    }
}

impl fmt::Debug for StatusList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusList")
            .field("bits", &self.bits)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The bit offset of status `index` inside its byte, counted from the least significant bit.
fn shift_of(bits: Bits, index: usize) -> u32 {
    let slot = index % bits.per_byte();
    // `slot` < 8 and `bits` ≤ 8, so the product is below 64.
    u32::try_from(slot).unwrap_or(0) * u32::from(bits.get())
}

/// The JSON form of a status list (Status List §4.2), as carried in the `status_list` claim
/// of a Status List Token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EncodedStatusList {
    /// Bits per status.
    pub bits: Bits,
    /// The ZLIB-compressed byte array, base64url without padding.
    pub lst: String,
    /// The URI of the Status List Aggregation (Status List §9), if published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_uri: Option<String>,
}

impl EncodedStatusList {
    /// The JSON form of `bits` and an already base64url-encoded `lst`.
    #[must_use]
    pub fn new(bits: Bits, lst: impl Into<String>) -> Self {
        Self {
            bits,
            lst: lst.into(),
            aggregation_uri: None,
        }
    }

    /// The JSON form with an `aggregation_uri`.
    ///
    /// # Errors
    /// [`StatusListError::InvalidUri`] when `uri` is not an absolute URI.
    pub fn with_aggregation_uri(mut self, uri: impl Into<String>) -> Result<Self, StatusListError> {
        let uri = uri.into();
        check_uri(&uri, "aggregation_uri")?;
        self.aggregation_uri = Some(uri);
        Ok(self)
    }

    /// Decodes `lst` and decompresses it under `limits`.
    ///
    /// # Errors
    /// [`StatusListError::InvalidEncoding`], [`StatusListError::InvalidCompression`] or
    /// [`StatusListError::TooLarge`].
    pub fn decode(&self, limits: &Limits) -> Result<StatusList, StatusListError> {
        let zlib = b64url_decode(&self.lst).map_err(|_| StatusListError::InvalidEncoding)?;
        StatusList::decompress(self.bits, &zlib, limits)
    }
}

/// Checks that `uri` is an absolute URI.
pub(crate) fn check_uri(uri: &str, field: &'static str) -> Result<(), StatusListError> {
    url::Url::parse(uri)
        .map(drop)
        .map_err(|_| StatusListError::InvalidUri { field })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_packed_from_the_least_significant_bit() {
        let mut list = StatusList::new(Bits::One, 16);
        for (index, value) in [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
            .into_iter()
            .enumerate()
        {
            list.set(index, value).unwrap();
        }
        assert_eq!(list.as_bytes(), [0xb9, 0xa3]);
    }

    #[test]
    fn set_refuses_values_wider_than_bits_and_indices_past_the_end() {
        let mut list = StatusList::new(Bits::Two, 5);
        assert_eq!(list.len(), 8);
        assert!(matches!(
            list.set(0, 4),
            Err(StatusListError::ValueOutOfRange {
                value: 4,
                bits: Bits::Two
            })
        ));
        assert!(matches!(
            list.set(8, 1),
            Err(StatusListError::IndexOutOfRange { index: 8, len: 8 })
        ));
        assert!(matches!(
            list.get(usize::MAX),
            Err(StatusListError::IndexOutOfRange { .. })
        ));
        list.set(7, 3).unwrap();
        list.set(7, 1).unwrap();
        assert_eq!(list.get(7).unwrap(), 1);
        assert_eq!(list.as_bytes(), [0x00, 0x40]);
    }

    #[test]
    fn status_types_follow_the_registry() {
        assert_eq!(StatusType::from(0), StatusType::Valid);
        assert_eq!(StatusType::from(1), StatusType::Invalid);
        assert_eq!(StatusType::from(2), StatusType::Suspended);
        assert_eq!(StatusType::from(3), StatusType::ApplicationSpecific(3));
        assert_eq!(
            StatusType::from(0x0c),
            StatusType::ApplicationSpecific(0x0c)
        );
        assert_eq!(StatusType::from(0x04), StatusType::Reserved(0x04));
        assert_eq!(StatusType::from(0x10), StatusType::Reserved(0x10));
        for value in 0..=u8::MAX {
            assert_eq!(StatusType::from(value).value(), value);
        }
    }

    #[test]
    fn bits_serialize_as_numbers_and_refuse_other_sizes() {
        assert_eq!(serde_json::to_string(&Bits::Four).unwrap(), "4");
        assert_eq!(serde_json::from_str::<Bits>("8").unwrap(), Bits::Eight);
        for bad in ["0", "3", "16", "-1", "1.0", "\"1\""] {
            assert!(serde_json::from_str::<Bits>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn truncated_or_trailing_zlib_is_refused() {
        let list = StatusList::new(Bits::One, 64);
        let zlib = list.compress().unwrap();
        for cut in 0..zlib.len() {
            assert!(
                matches!(
                    StatusList::decompress(Bits::One, &zlib[..cut], &Limits::DEFAULT),
                    Err(StatusListError::InvalidCompression)
                ),
                "cut at {cut}"
            );
        }
        let mut trailing = zlib.clone();
        trailing.push(0);
        assert!(matches!(
            StatusList::decompress(Bits::One, &trailing, &Limits::DEFAULT),
            Err(StatusListError::InvalidCompression)
        ));
        let mut bad_checksum = zlib;
        let last = bad_checksum.len() - 1;
        bad_checksum[last] ^= 1;
        assert!(matches!(
            StatusList::decompress(Bits::One, &bad_checksum, &Limits::DEFAULT),
            Err(StatusListError::InvalidCompression)
        ));
    }
}
