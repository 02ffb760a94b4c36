//! The garden chart against the InfluxDB at `KINFLUX_INFLUX_URL`: points of three zones
//! with known values come back as one line per zone, placed by value, with each zone's
//! point count in the legend, in an SVG that parses as XML.

use std::process::Command;

use kinflux_testkit::process::example_binary;
use kinflux_testkit::{influx, require_or_skip, unique};

/// The y coordinates of the polyline of `zone`.
fn ys(svg: &str, zone: &str) -> Vec<f64> {
    let start = format!("<polyline data-zone=\"{zone}\" points=\"");
    let line = svg
        .lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("no line for {zone} in\n{svg}"));
    let points = &line[start.len()..];
    let points = &points[..points.find('"').expect("end of points")];
    points
        .split(' ')
        .map(|p| p.split_once(',').expect("x,y").1.parse().expect("a number"))
        .collect()
}

#[test]
fn the_chart_draws_one_line_per_zone_with_its_point_count() {
    let url = require_or_skip!("KINFLUX_INFLUX_URL");
    let Some(chart) = example_binary("garden_chart") else {
        return;
    };
    let database = unique("chart");
    influx::create_database(&url, &database);
    // An hour of readings, one a minute: north at 0.2, south at 0.8, east rising from 0.3
    // to about 0.6; south has 30 points only.
    let mut body = String::new();
    let start_s = 1_700_000_000i64;
    for minute in 0..60 {
        let t = start_s + minute * 60;
        body.push_str(&format!("garden,zone=north soil_moisture=0.2 {t}\n"));
        if minute < 30 {
            body.push_str(&format!("garden,zone=south soil_moisture=0.8 {t}\n"));
        }
        let rising = 0.3 + 0.005 * minute as f64;
        body.push_str(&format!("garden,zone=east soil_moisture={rising} {t}\n"));
    }
    let answer = influx::write(&url, &database, "s", body.as_bytes());
    assert_eq!(answer.status, 204, "{answer:?}");

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("charts/garden.svg");
    let run = Command::new(chart)
        .args(["--influx-url", &url, "--database", &database, "--out"])
        .arg(&out)
        .output()
        .expect("run garden_chart");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!("chart: {} (3 zones, 150 points)", out.display())
    );
    let svg = std::fs::read_to_string(&out).expect("the chart");
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert!(
        svg.contains(">soil_moisture per zone over time: 150 points<"),
        "{svg}"
    );
    for legend in ["north (60 points)", "south (30 points)", "east (60 points)"] {
        assert!(
            svg.contains(&format!(">{legend}</text>")),
            "no {legend:?} in\n{svg}"
        );
    }
    let (north, south, east) = (ys(&svg, "north"), ys(&svg, "south"), ys(&svg, "east"));
    assert!(!north.is_empty() && !south.is_empty() && !east.is_empty());
    // Higher moisture is higher up: a smaller y.
    assert!(south.iter().all(|s| north.iter().all(|n| s < n)), "{svg}");
    assert!(east.first() > east.last(), "east rises: {east:?}");
    assert!(
        north.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-9),
        "{north:?}"
    );
    // The whole file parses as XML (Python's parser, where Python is installed).
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])",
        ])
        .arg(&out)
        .output();
    if let Ok(parsed) = parsed {
        assert!(
            parsed.status.success(),
            "{}",
            String::from_utf8_lossy(&parsed.stderr)
        );
    }
    influx::drop_database(&url, &database);
}
