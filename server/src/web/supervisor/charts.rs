//! Bar charts as inline SVG, drawn on the server: no script, no library, and nothing the
//! Content-Security-Policy forbids (shapes are placed by attributes, coloured by classes in
//! app.css). Every chart has a title and text labels, so it reads without colour and to a
//! screen reader.

use maud::{Markup, html};

/// One bar: its label, its value (`None`: no data, no bar) and the value as people read it.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
    pub text: String,
}

/// Drawn narrow, label above bar, so that a phone shows the chart at about its own size and
/// the labels stay at their 14 px (app.css); a wide screen enlarges it a little.
const WIDTH: f64 = 360.0;
const PAD: f64 = 8.0;
const ROW: f64 = 44.0;
/// The baseline of a row's label and value text, from the row's top.
const TEXT_Y: f64 = 16.0;
const BAR_Y: f64 = 22.0;
const BAR_HEIGHT: f64 = 14.0;

/// A horizontal bar chart; bars are scaled to `max` (at least the largest value). `class`
/// is added to every bar, for its colour. Each row has its label on the left and its value
/// on the right above the bar.
pub fn bar_chart(title: &str, bars: &[Bar], max: f64, class: &str) -> Markup {
    let largest = bars
        .iter()
        .filter_map(|b| b.value)
        .fold(max, f64::max)
        .max(f64::MIN_POSITIVE);
    let span = WIDTH - 2.0 * PAD;
    let height = PAD * 2.0 + ROW * bars.len().max(1) as f64;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (WIDTH) " " (height)}
            role="img" aria-label=(title) {
            title { (title) }
            @if bars.is_empty() {
                text x=(PAD) y=(PAD + TEXT_Y) { "—" }
            }
            @for (i, bar) in bars.iter().enumerate() {
                @let y = PAD + ROW * i as f64;
                @let width = bar.value.map_or(0.0, |v| (v.max(0.0) / largest * span).round());
                g {
                    title { (bar.label) ": " (bar.text) }
                    text.label x=(PAD) y=(y + TEXT_Y) { (truncate(&bar.label, 20)) }
                    text.value x=(WIDTH - PAD) y=(y + TEXT_Y) text-anchor="end" { (bar.text) }
                    rect.track x=(PAD) y=(y + BAR_Y) width=(span) height=(BAR_HEIGHT) {}
                    @if bar.value.is_some() {
                        rect class={"bar " (class)} x=(PAD) y=(y + BAR_Y) width=(width) height=(BAR_HEIGHT) {}
                    }
                }
            }
        }
    }
}

fn truncate(s: &str, chars: usize) -> String {
    if s.chars().count() <= chars {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(chars - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_keep_their_labels() {
        let bars = [
            Bar {
                label: "KIS-PBI".into(),
                value: Some(1.0),
                text: "100%".into(),
            },
            Bar {
                label: "PKH <b>".into(),
                value: Some(0.5),
                text: "50%".into(),
            },
            Bar {
                label: "Gakinda".into(),
                value: None,
                text: "—".into(),
            },
        ];
        let svg = bar_chart("Persentase disetujui", &bars, 1.0, "rate").into_string();
        let span = WIDTH - 2.0 * PAD;
        // Three tracks and the largest bar span the chart.
        assert_eq!(
            svg.matches(&format!("width=\"{span}\"")).count(),
            4,
            "{svg}"
        );
        assert!(svg.contains(&format!("width=\"{}\"", (span / 2.0).round())));
        assert_eq!(
            svg.matches("<rect class=\"bar").count(),
            2,
            "no bar without data"
        );
        assert!(svg.contains("<title>Persentase disetujui</title>"));
        assert!(svg.contains("PKH &lt;b&gt;"), "labels are escaped");
        assert!(!svg.contains("style="), "the CSP forbids inline styles");
    }
}
