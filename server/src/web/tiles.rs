//! The base map of the office map: a tile server the Dinas chose (`--map-tiles`), perhaps its
//! own. Its origin is the only one besides ours that the map page lets the browser load
//! images from; without one the map draws its points on a plain background.

/// A checked tile URL template, `https://tiles.example/{z}/{x}/{y}.png`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapTiles {
    url: String,
    /// Shown in the map's corner, as the tile server's terms ask.
    attribution: String,
    /// The CSP source of its images: `https://tiles.example`, `https://*.tile.example`.
    source: String,
}

impl MapTiles {
    /// Checks a template: http(s), a plain host (Leaflet's `{s}` subdomain allowed), and the
    /// `{z}`, `{x}` and `{y}` placeholders.
    pub fn parse(url: &str, attribution: &str) -> Result<Self, String> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(s, _)| *s == "https" || *s == "http")
            .ok_or_else(|| format!("--map-tiles {url:?}: must start with https:// (or http://)"))?;
        let host = rest.split('/').next().unwrap_or_default();
        let host_ok = !host.is_empty()
            && host
                .replace("{s}", "a")
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
        if !host_ok {
            return Err(format!(
                "--map-tiles {url:?}: the host must be a plain name or address"
            ));
        }
        for needed in ["{z}", "{x}", "{y}"] {
            if !rest.contains(needed) {
                return Err(format!(
                    "--map-tiles {url:?}: must hold {{z}}, {{x}} and {{y}}"
                ));
            }
        }
        if url
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == ';' || c == ',')
        {
            return Err(format!(
                "--map-tiles {url:?}: must not hold spaces, quotes, ',' or ';'"
            ));
        }
        Ok(Self {
            url: url.to_owned(),
            attribution: attribution.trim().to_owned(),
            source: format!("{scheme}://{}", host.replace("{s}", "*")),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn attribution(&self) -> &str {
        &self.attribution
    }

    /// The page's Content-Security-Policy: the web's own, with the tile server's images.
    pub fn csp(tiles: Option<&Self>) -> String {
        let extra = tiles.map_or(String::new(), |t| format!(" {}", t.source));
        format!(
            "default-src 'self'; img-src 'self' data:{extra}; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_is_checked_and_gives_its_origin() {
        let osm = MapTiles::parse("https://{s}.tile.example.org/{z}/{x}/{y}.png", "© x").unwrap();
        assert!(
            MapTiles::csp(Some(&osm)).contains("img-src 'self' data: https://*.tile.example.org;")
        );
        let own = MapTiles::parse("http://10.0.0.5:8081/tiles/{z}/{x}/{y}.png", "").unwrap();
        assert!(MapTiles::csp(Some(&own)).contains("data: http://10.0.0.5:8081;"));
        assert!(MapTiles::csp(None).contains("img-src 'self' data:;"));
        for bad in [
            "ftp://a/{z}/{x}/{y}",
            "https://a/{z}/{x}",
            "https://a b/{z}/{x}/{y}",
            "https://a;script-src/{z}/{x}/{y}",
            "https:///{z}/{x}/{y}",
            "https://a/{z}/{x}/{y}?k=\"",
        ] {
            assert!(MapTiles::parse(bad, "").is_err(), "{bad}");
        }
    }
}
