//! Thumbnails: a JPEG at most [`THUMB_SIDE`] px on its longest side, made from a stored image.
//!
//! An image's header says how large it decodes: a 20 MB upload can claim to be 60000 ×
//! 60000 pixels (a decompression bomb: 14 GB of pixels). The header is read first and an
//! image over [`MAX_SIDE`] or [`MAX_PIXELS`] is refused without decoding; the decoder is also
//! given the same bounds and an allocation limit, in case the header lies. Decoding runs on a
//! blocking thread (`Hub::run_heavy`, at most one per core), never on the async workers.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 320;
/// Longest side of an image a thumbnail is made from.
pub const MAX_SIDE: u32 = 12_000;
/// Most pixels of an image a thumbnail is made from: an A4 page scanned at 600 dpi is 35
/// million. Decoded as RGBA this is at most 160 MB, one decode per core at a time.
pub const MAX_PIXELS: u64 = 40_000_000;
const JPEG_QUALITY: u8 = 80;

/// Why no thumbnail was made; the text is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThumbError {
    #[error(
        "the image is {width} × {height} pixels; thumbnails are made of images up to {MAX_SIDE} pixels a side and {MAX_PIXELS} pixels in all"
    )]
    TooLarge { width: u32, height: u32 },
    #[error("the image cannot be decoded")]
    NotDecodable,
}

/// The decoder for a stored MIME type; `None` for anything but the images attachments may be.
pub fn format_of(mime: &str) -> Option<ImageFormat> {
    match mime {
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/png" => Some(ImageFormat::Png),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// The header's dimensions, refused when over the bounds; nothing is decoded.
pub fn check_dimensions(bytes: &[u8], format: ImageFormat) -> Result<(u32, u32), ThumbError> {
    let reader = ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|_| ThumbError::NotDecodable)?;
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ThumbError::TooLarge { width, height });
    }
    Ok((width, height))
}

/// The thumbnail of an encoded image, as JPEG.
pub fn make(bytes: &[u8], format: ImageFormat) -> Result<Vec<u8>, ThumbError> {
    check_dimensions(bytes, format)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // The decoded pixels (at most four bytes each) and room for the decoder's own buffers.
    limits.max_alloc = Some(MAX_PIXELS * 4 + 64 * 1024 * 1024);
    reader.limits(limits);
    let image = reader.decode().map_err(|_| ThumbError::NotDecodable)?;
    let small = image.thumbnail(THUMB_SIDE, THUMB_SIDE).to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(&small)
        .map_err(|_| ThumbError::NotDecodable)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_pixel(width, height, image::Rgb([200, 30, 30]));
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_thumbnail_keeps_the_aspect_within_320_pixels() {
        let thumb = make(&png(1000, 500), ImageFormat::Png).unwrap();
        let decoded = image::load_from_memory_with_format(&thumb, ImageFormat::Jpeg).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (320, 160));
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn a_bomb_is_refused_from_its_header() {
        // A real PNG header claiming 60000 × 60000 pixels, with no pixel data after it.
        let mut bytes = png(1, 1);
        // IHDR's width and height start at byte 16.
        bytes[16..20].copy_from_slice(&60_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&60_000u32.to_be_bytes());
        // IHDR's CRC covers its type and data (bytes 12..29) and follows them.
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            check_dimensions(&bytes, ImageFormat::Png),
            Err(ThumbError::TooLarge {
                width: 60_000,
                height: 60_000
            })
        );
        assert!(matches!(
            make(&bytes, ImageFormat::Png),
            Err(ThumbError::TooLarge { .. })
        ));
    }

    #[test]
    fn not_an_image_is_not_decodable() {
        assert_eq!(
            make(b"%PDF-1.4 not an image", ImageFormat::Jpeg),
            Err(ThumbError::NotDecodable)
        );
    }
}
