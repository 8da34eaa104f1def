//! # The VPC description file (spec/vpc-config.md)
//!
//! [`parse`] reads the TOML into [`file::RawFile`], then [`validate()`] checks all of it and
//! either returns a [`Config`] (every reference resolved, every default filled in) or every
//! error it found, each with its place (`instance.web1.ip`) and reason; nothing is
//! programmed from a file with an error. [`plan()`] turns a [`Config`] into the ordered
//! driver calls for one host, and [`apply`] makes them.
pub mod file;
pub mod ids;
pub mod model;
pub mod plan;
pub mod text;
pub mod validate;

pub use model::Config;
pub use plan::{apply, held, plan, plan_against, ApplyError, Command, Plan, PlanError};
pub use validate::{validate, Limits};

use std::fmt;
use std::path::Path;

/// One problem of a VPC file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: a dotted path like `instance.web1.ip`, or `file` for TOML syntax.
    pub place: String,
    pub reason: String,
    /// Line and column (1-based) when the file text was at fault.
    pub at: Option<(usize, usize)>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.reason)?;
        if let Some((line, col)) = self.at {
            write!(f, " (line {line}, column {col})")?;
        }
        Ok(())
    }
}

/// Every problem of a VPC file, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    fn one(place: &str, reason: String, at: Option<(usize, usize)>) -> Self {
        ConfigErrors(vec![ConfigError {
            place: place.to_string(),
            reason,
            at,
        }])
    }
}

/// Parses and validates the text of a VPC file.
pub fn parse(text: &str, limits: &Limits) -> Result<Config, ConfigErrors> {
    let raw: file::RawFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| text::line_col(text, s.start));
        ConfigErrors::one("file", e.message().trim_end().to_string(), at)
    })?;
    validate(&raw, text, limits)
}

/// The largest VPC file read (a cloud's worth of VPCs is a few MiB of TOML).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads, parses and validates a VPC file: a regular file of at most [`MAX_FILE_BYTES`]
/// (a device or a FIFO is refused before it is opened, so it can neither hang nor fill
/// memory).
pub fn load(path: &Path, limits: &Limits) -> Result<Config, ConfigErrors> {
    let fail = |reason: String| ConfigErrors::one(&path.display().to_string(), reason, None);
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(fail(
            "not a regular file (a VPC file is a TOML file)".into(),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(fail(format!(
            "{} bytes; a VPC file is at most {MAX_FILE_BYTES} bytes",
            meta.len()
        )));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?,
            MAX_FILE_BYTES + 1,
        ),
        &mut text,
    )
    .map_err(|e| fail(format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(format!(
            "it grew past {MAX_FILE_BYTES} bytes while read"
        )));
    }
    parse(&text, limits)
}

/// The VPC-file fuzzer's body (`nicctl/fuzz`): any bytes through parsing and validation;
/// a valid file through every host's plan, and through the cluster's records and back,
/// which must give the same records (nothing refused, nothing lost).
pub fn fuzz_vpc_file(data: &[u8]) {
    use crate::cluster::layout;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = parse(text, &Limits::vfs(64)) else {
        return;
    };
    for h in &config.hosts {
        if let Ok(p) = plan(&config, &h.name) {
            let _ = p.desired();
        }
    }
    let records = layout::records_of(&config);
    let bytes = records
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_vec(v).unwrap_or_default()))
        .collect();
    let back = layout::read(&bytes, &Limits::vfs(u32::MAX));
    assert!(
        back.refused.is_empty(),
        "a valid file's records are refused: {:?}",
        back.refused
    );
    assert_eq!(layout::records_of(&back.config), records);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = parse("[vpc.a]\nvni = 1\ncidr = 10.0.0.0/16\n", &Limits::default()).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].place, "file");
        assert_eq!(err.0[0].at.map(|a| a.0), Some(3), "{err}");

        let err = parse(
            "[vpc.a]\nvni = 1\ncidr = \"10.0.0.0/16\"\ncolour = 1\n",
            &Limits::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("file: unknown field `colour`"),
            "{err}"
        );
        assert!(err.to_string().ends_with("(line 4, column 1)"), "{err}");
    }

    #[test]
    fn an_unreadable_file_names_the_path() {
        let err = load(Path::new("/nonexistent/vpc.toml"), &Limits::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/vpc.toml: cannot read: "),
            "{err}"
        );
    }

    #[test]
    fn only_a_regular_file_of_a_sane_size_is_read() {
        let err = load(Path::new("/dev/zero"), &Limits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/zero: not a regular file (a VPC file is a TOML file)"
        );
        let dir = std::env::temp_dir().join(format!("vpcnic-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo.toml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Would block forever if it were opened.
        let err = load(&fifo, &Limits::default()).unwrap_err();
        assert!(err
            .to_string()
            .ends_with(": not a regular file (a VPC file is a TOML file)"));
        let big = dir.join("big.toml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        let err = load(&big, &Limits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: {} bytes; a VPC file is at most {MAX_FILE_BYTES} bytes",
                big.display(),
                MAX_FILE_BYTES + 1
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_names_list_a_few_known_ones() {
        let mut text = String::from("[vpc.prod]\nvni = 1\ncidr = \"10.0.0.0/16\"\n");
        for i in 0..500 {
            text.push_str(&format!("[gateway.g{i}]\nkind = \"internet\"\n"));
        }
        text.push_str(
            "[route_table.t]\nvpc = \"nope\"\nroutes = [{ dest = \"0.0.0.0/0\", target = \"x\" }]\n",
        );
        let err = parse(&text, &Limits::default()).unwrap_err().to_string();
        assert!(
            err.contains("(gateways: g0, g1, g2, g3, g4, g5, g6, g7 and 492 more)"),
            "{err}"
        );
        assert!(err.contains("unknown vpc \"nope\" (known: prod)"), "{err}");
    }

    /// The fuzzer's body over its seeds and a few thousand mutations of them.
    #[test]
    fn the_vpc_file_fuzzer_body_holds_on_its_seeds_and_mutations() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/vpc_file");
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read(e.path()).ok())
            .collect();
        assert!(seeds.len() >= 4, "seeds in {dir}");
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..3000 {
            let mut m = seeds[round % seeds.len()].clone();
            for _ in 0..(next() % 3) {
                if m.is_empty() {
                    break;
                }
                let i = (next() as usize) % m.len();
                m[i] = b"0123456789./=\"[a-z] \n"[(next() % 20) as usize];
            }
            fuzz_vpc_file(&m);
        }
    }

    #[test]
    fn errors_print_one_per_line() {
        let e = |p: &str, at| ConfigError {
            place: p.into(),
            reason: "bad".into(),
            at,
        };
        let all = ConfigErrors(vec![e("a.b", None), e("c", Some((3, 4)))]);
        assert_eq!(all.to_string(), "a.b: bad\nc: bad (line 3, column 4)");
    }
}
