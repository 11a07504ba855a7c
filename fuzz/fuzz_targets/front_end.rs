//! One fuzz target over the parsers a user's text reaches: the YAML loader, the interpolation
//! grammar (and resolution of what parses), the override parser and the `eval` evaluator.
//! The first byte picks the parser; none of them may panic, overflow the stack or hang.

#![no_main]

use cytodl_build::config::{override_parser, yaml};
use cytodl_build::diag::FileId;
use cytodl_build::interp::{self, eval, grammar, ResolveOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    match which % 5 {
        0 => {
            // A config file, then resolution of whatever it holds.
            if let Ok(node) = yaml::load_config(text, FileId(0)) {
                let _ = interp::resolve_config(&node, &ResolveOptions::default());
                let _ = cytodl_build::config::emit::to_yaml(&node);
            }
        }
        1 => {
            let _ = grammar::parse_value(text);
            let _ = grammar::parse_element(text);
        }
        2 => {
            let _ = override_parser::parse_override(text);
        }
        3 => {
            let _ = eval::eval_python(text);
        }
        _ => {
            // A value resolved inside a small config with siblings to refer to.
            let yaml_text = format!("a: 1\nb: {{c: [1, 2]}}\nd: ???\nx: {}\n", quote(text));
            if let Ok(node) = yaml::load_config(&yaml_text, FileId(0)) {
                let _ = interp::resolve_config(&node, &ResolveOptions::default());
            }
        }
    }
});

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''").replace('\n', " "))
}
