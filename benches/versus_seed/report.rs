//! Tables and number formats.

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if x < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

pub fn ratio(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x < 0.095 {
        format!("{x:.3}x")
    } else {
        format!("{x:.2}x")
    }
}

/// One table: the first `left` columns left-aligned (text), the others right-aligned.
pub fn print_table(title: &str, left: usize, header: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            let pad = width[i] - cell.chars().count();
            if i > 0 {
                out.push_str("  ");
            }
            if i < left {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        println!("{}", out.trim_end());
    };
    println!("\n{title}");
    line(header.to_vec());
    line(
        width
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(|s| s.as_str())
            .collect(),
    );
    for row in rows {
        line(row.iter().map(|s| s.as_str()).collect());
    }
}

/// The "refused" cell of a row: the refusals of all its runs, and the first one's reason.
pub fn refused<'a>(runs: impl Iterator<Item = (usize, &'a Option<String>)>) -> String {
    let mut total = 0;
    let mut first = None;
    for (count, why) in runs {
        total += count;
        first = first.or(why.as_ref());
    }
    match first {
        Some(why) => format!("{total} ({why})"),
        None => total.to_string(),
    }
}
