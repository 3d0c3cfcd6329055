//! Function names from callgrind dumps (`seatq_testkit::callgrind`) shortened for tables.

/// A function name short enough for a table: `<T as Trait>::f` and `<impl T>::f` read as
/// `T::f`, generic arguments and crate prefixes go, the last three path segments stay.
pub fn short_name(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '<' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A <...> group: find its end.
        let mut depth = 0;
        let mut j = i;
        while j < chars.len() {
            match chars[j] {
                '<' => depth += 1,
                '>' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        let inner: String = chars[i + 1..j.min(chars.len())].iter().collect();
        // Qualified paths and impl blocks name a type; other groups are generic arguments.
        let path_like = out.is_empty() || out.ends_with("::");
        if path_like {
            let ty = inner
                .strip_prefix("impl ")
                .unwrap_or(&inner)
                .split(" as ")
                .next()
                .unwrap_or("");
            out.push_str(&short_name(ty));
        }
        i = j + 1;
    }
    let out = out.replace("seatq::", "");
    let parts: Vec<&str> = out.split("::").filter(|p| !p.is_empty()).collect();
    if parts.len() > 3 {
        parts[parts.len() - 3..].join("::")
    } else {
        parts.join("::")
    }
}
