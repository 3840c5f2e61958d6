//! Invertible key renames between a checkpoint's names and a module's paths.

/// One rename rule: keys starting with `checkpoint` are read into the module
/// path starting with `model`. `{n}` in either side stands for a decimal index
/// and is carried across in order, e.g.
/// `("encoder.block.{n}.layer.0.SelfAttention.", "encoder.block.{n}.attention.")`.
///
/// Rules are prefix templates rather than regexes so that they can be run
/// backwards: a tensor the model misses is reported under the checkpoint's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    checkpoint: String,
    model: String,
}

impl Rename {
    /// A rule mapping checkpoint prefix `checkpoint` to module prefix `model`.
    pub fn new(checkpoint: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            checkpoint: checkpoint.into(),
            model: model.into(),
        }
    }

    /// The module path for a checkpoint key, if this rule applies.
    pub fn to_model(&self, key: &str) -> Option<String> {
        rewrite(key, &self.checkpoint, &self.model)
    }

    /// The checkpoint key for a module path, if this rule applies.
    pub fn to_checkpoint(&self, path: &str) -> Option<String> {
        rewrite(path, &self.model, &self.checkpoint)
    }
}

/// Applies the first matching rule, or returns `key` unchanged.
pub(crate) fn apply_first(rules: &[Rename], key: &str, forward: bool) -> String {
    rules
        .iter()
        .find_map(|r| {
            if forward {
                r.to_model(key)
            } else {
                r.to_checkpoint(key)
            }
        })
        .unwrap_or_else(|| key.to_string())
}

/// Matches `key` against the prefix template `from` and, on success, writes the
/// captured indices into `to` followed by the rest of `key`.
fn rewrite(key: &str, from: &str, to: &str) -> Option<String> {
    let mut rest = key;
    let mut captures = Vec::new();
    let mut parts = from.split("{n}").peekable();
    while let Some(literal) = parts.next() {
        rest = rest.strip_prefix(literal)?;
        if parts.peek().is_some() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            captures.push(&rest[..digits]);
            rest = &rest[digits..];
        }
    }
    let mut out = String::with_capacity(key.len() + to.len());
    let mut captures = captures.into_iter();
    let mut parts = to.split("{n}").peekable();
    while let Some(literal) = parts.next() {
        out.push_str(literal);
        if parts.peek().is_some() {
            out.push_str(captures.next()?);
        }
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_both_ways() {
        let r = Rename::new(
            "encoder.block.{n}.layer.0.SelfAttention.",
            "encoder.block.{n}.attention.",
        );
        let m = r
            .to_model("encoder.block.12.layer.0.SelfAttention.q.weight")
            .unwrap();
        assert_eq!(m, "encoder.block.12.attention.q.weight");
        assert_eq!(
            r.to_checkpoint(&m).unwrap(),
            "encoder.block.12.layer.0.SelfAttention.q.weight"
        );
        assert_eq!(r.to_model("encoder.block.x.layer.0.SelfAttention.q"), None);
        assert_eq!(r.to_model("decoder.block.1.layer.0.SelfAttention.q"), None);
    }

    #[test]
    fn plain_prefix() {
        let r = Rename::new("encoder.embed_tokens.", "shared.");
        assert_eq!(
            r.to_model("encoder.embed_tokens.weight").as_deref(),
            Some("shared.weight")
        );
    }
}
