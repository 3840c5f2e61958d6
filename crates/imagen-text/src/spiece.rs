//! A SentencePiece `spiece.model`, read without protobuf dependencies, and the
//! T5 `tokenizers::Tokenizer` transformers builds from it.
//!
//! The published DeepFloyd IF repositories and `google/t5-v1_1-*` ship their
//! tokenizer as `spiece.model` + `tokenizer_config.json` with no
//! `tokenizer.json`. transformers (5.24, `T5Tokenizer.from_pretrained`)
//! converts such a directory on load; [`SentencePieceModel::t5_tokenizer`]
//! builds the same tokenizer:
//!
//! - model: Unigram over the pieces and their scores, unknown id from
//!   `trainer_spec.unk_id`, then T5's sentinels `<extra_id_{n-1}>` ..
//!   `<extra_id_0>` (score 0) appended, so `<extra_id_0>` has the last id;
//! - normalizer: `Precompiled` with `normalizer_spec.precompiled_charsmap`
//!   (none when the model has no charsmap);
//! - pre-tokenizer: `WhitespaceSplit`, then `Metaspace` (`▁`, prepend
//!   `always`, split). This drops leading, trailing and repeated whitespace as
//!   SentencePiece's `remove_extra_whitespaces` does, and adds its dummy prefix;
//! - added tokens: control pieces, the unknown piece, the sentinels and the
//!   `tokenizer_config.json` special tokens as special tokens matched on the
//!   raw text; user-defined pieces as ordinary added tokens;
//! - post-processor: `$A </s>` (`TemplateProcessing`); decoder: `Metaspace`.
//!
//! transformers 4's `T5Converter` pipeline (`T5TokenizerFast`: `Precompiled`,
//! `Strip` right and `Replace(" {2,}", "▁")`, then `Metaspace`), its slow
//! SentencePiece `T5Tokenizer` and SentencePiece itself give the same ids on
//! every recorded prompt, except for text holding a literal `▁` (U+2581) under
//! a charsmap that keeps it, where the three give three different results
//! (T5's `nmt_nfkc` charsmap maps it to a space, and then they agree); see
//! `tools/fixtures/README.md`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::Precompiled;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::TextError;

/// The most sentinels `extra_ids` may ask for: T5 uses 100; a larger value is
/// a broken config, refused before it allocates a vocabulary for it.
pub const MAX_EXTRA_IDS: usize = 100_000;

/// The kind of a SentencePiece piece (`ModelProto.SentencePiece.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    /// An ordinary piece (1).
    Normal,
    /// The unknown-token piece (2).
    Unknown,
    /// A control symbol such as `<pad>` or `</s>` (3).
    Control,
    /// A user-defined symbol, always emitted whole (4).
    UserDefined,
    /// A piece kept in the vocabulary but never produced (5).
    Unused,
    /// A byte-fallback piece `<0xNN>` (6).
    Byte,
}

impl PieceType {
    fn from_proto(value: u64) -> Option<Self> {
        Some(match value {
            1 => Self::Normal,
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => return None,
        })
    }
}

/// One vocabulary entry of a SentencePiece model.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// The piece text, with `▁` for a space.
    pub piece: String,
    /// Its Unigram log-probability.
    pub score: f32,
    /// What kind of piece it is.
    pub kind: PieceType,
}

/// The parts of a SentencePiece `ModelProto` that a T5 tokenizer needs.
///
/// Parsed by hand from the protobuf wire format: only the fields below are
/// read, every other field is skipped. A malformed file (truncated, a bad
/// wire type, a length past the end, invalid UTF-8, no pieces, a model type
/// other than Unigram, a charsmap that would make the normalizer index out of
/// bounds) is a [`TextError::Tokenizer`] naming the file; nothing is allocated
/// from a length the file claims before that length is checked against the
/// bytes actually there.
#[derive(Debug, Clone, PartialEq)]
pub struct SentencePieceModel {
    /// `pieces` (field 1), in id order.
    pub pieces: Vec<Piece>,
    /// `trainer_spec.unk_id` (default 0), the Unigram unknown id, as in
    /// transformers 4 and SentencePiece (transformers 5 assumes T5's 2).
    pub unk_id: u32,
    /// `trainer_spec.byte_fallback`. Ignored by the T5 conversion, as in
    /// transformers: T5's model does not use it.
    pub byte_fallback: bool,
    /// `normalizer_spec.precompiled_charsmap`: the compiled normalization
    /// rules, empty when the model has none.
    pub precompiled_charsmap: Vec<u8>,
    /// `normalizer_spec.add_dummy_prefix` (default true). The T5 conversion
    /// always prepends `▁`, as transformers does.
    pub add_dummy_prefix: bool,
    /// `normalizer_spec.remove_extra_whitespaces` (default true). The T5
    /// conversion always removes them, as transformers does.
    pub remove_extra_whitespaces: bool,
    /// `normalizer_spec.escape_whitespaces` (default true).
    pub escape_whitespaces: bool,
}

/// The T5 settings of a `tokenizer_config.json` that shape the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T5SpecialTokens {
    /// Number of sentinels `<extra_id_N>` appended to the vocabulary
    /// (`extra_ids`, default 100).
    pub extra_ids: usize,
    /// `additional_special_tokens`: sentinels and any other special token;
    /// those not in the vocabulary get new ids after it, in this order.
    pub additional_special_tokens: Vec<String>,
    /// `eos_token`, appended to every sequence (default `</s>`).
    pub eos_token: String,
    /// `pad_token` (default `<pad>`).
    pub pad_token: String,
    /// `unk_token` (default `<unk>`).
    pub unk_token: String,
}

impl Default for T5SpecialTokens {
    fn default() -> Self {
        Self {
            extra_ids: 100,
            additional_special_tokens: Vec::new(),
            eos_token: "</s>".into(),
            pad_token: "<pad>".into(),
            unk_token: "<unk>".into(),
        }
    }
}

impl T5SpecialTokens {
    /// Reads `tokenizer_config.json` (transformers' `T5Tokenizer` keys; other
    /// keys are ignored). A token may be a string or an `AddedToken` object
    /// with a `content` field.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TextError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TextError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let err = |reason: String| TextError::Tokenizer {
            path: path.to_path_buf(),
            reason,
        };
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let obj = json
            .as_object()
            .ok_or_else(|| err("not a JSON object".into()))?;
        let mut out = Self::default();
        if let Some(v) = obj.get("extra_ids").filter(|v| !v.is_null()) {
            let n = v
                .as_u64()
                .ok_or_else(|| err(format!("`extra_ids` is {v}, not a count")))?;
            out.extra_ids = usize::try_from(n)
                .ok()
                .filter(|&n| n <= MAX_EXTRA_IDS)
                .ok_or_else(|| err(format!("`extra_ids` {n} exceeds {MAX_EXTRA_IDS}")))?;
        }
        let token = |key: &str, v: &serde_json::Value| -> Result<String, TextError> {
            match v {
                serde_json::Value::String(s) => Ok(s.clone()),
                serde_json::Value::Object(o) => o
                    .get("content")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| err(format!("`{key}` has no string `content`"))),
                other => Err(err(format!("`{key}` is {other}, not a token"))),
            }
        };
        for (key, slot) in [
            ("eos_token", &mut out.eos_token),
            ("pad_token", &mut out.pad_token),
            ("unk_token", &mut out.unk_token),
        ] {
            if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
                *slot = token(key, v)?;
            }
        }
        if let Some(v) = obj
            .get("additional_special_tokens")
            .filter(|v| !v.is_null())
        {
            let list = v
                .as_array()
                .ok_or_else(|| err("`additional_special_tokens` is not a list".into()))?;
            out.additional_special_tokens = list
                .iter()
                .map(|t| token("additional_special_tokens", t))
                .collect::<Result<_, _>>()?;
        }
        // transformers' rule: listed sentinels must be exactly the extra ids.
        let sentinels = out
            .additional_special_tokens
            .iter()
            .filter(|t| t.contains("<extra_id_"))
            .count();
        if sentinels > 0 && out.extra_ids > 0 && sentinels != out.extra_ids {
            return Err(err(format!(
                "`extra_ids` is {} but `additional_special_tokens` lists {sentinels} \
                 `<extra_id_N>` tokens",
                out.extra_ids
            )));
        }
        Ok(out)
    }
}

impl SentencePieceModel {
    /// Reads and parses `spiece.model`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TextError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| TextError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses the bytes of a `spiece.model`; `path` is where they came from,
    /// named in errors.
    pub fn from_bytes(bytes: &[u8], path: impl AsRef<Path>) -> Result<Self, TextError> {
        Self::parse(bytes).map_err(|reason| TextError::Tokenizer {
            path: path.as_ref().to_path_buf(),
            reason: format!("not a usable SentencePiece model: {reason}"),
        })
    }

    /// Parses a serialized `ModelProto` and checks what the conversion needs.
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut model = Self {
            pieces: Vec::new(),
            unk_id: 0,
            byte_fallback: false,
            precompiled_charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        };
        // proto2 defaults: model_type UNIGRAM (1), unk_id 0.
        let mut model_type = 1u64;
        let mut unk_id = 0i32;
        let mut top = Reader::new(bytes);
        while let Some((field, value)) = top.field()? {
            match (field, value) {
                (1, Value::Bytes(b)) => {
                    let id = model.pieces.len();
                    model
                        .pieces
                        .push(parse_piece(b).map_err(|e| format!("piece {id}: {e}"))?);
                }
                (2, Value::Bytes(b)) => {
                    let mut r = Reader::new(b);
                    while let Some((f, v)) = r.field().map_err(|e| format!("trainer_spec: {e}"))? {
                        match (f, v) {
                            (3, Value::Varint(v)) => model_type = v,
                            (35, Value::Varint(v)) => model.byte_fallback = v != 0,
                            // int32: the low 32 bits of the (sign-extended) varint.
                            (40, Value::Varint(v)) => unk_id = v as u32 as i32,
                            (3 | 35 | 40, _) => {
                                return Err(format!(
                                    "trainer_spec field {f} has the wrong wire type"
                                ));
                            }
                            _ => {}
                        }
                    }
                }
                (3, Value::Bytes(b)) => {
                    let mut r = Reader::new(b);
                    while let Some((f, v)) =
                        r.field().map_err(|e| format!("normalizer_spec: {e}"))?
                    {
                        match (f, v) {
                            (2, Value::Bytes(b)) => model.precompiled_charsmap = b.to_vec(),
                            (3, Value::Varint(v)) => model.add_dummy_prefix = v != 0,
                            (4, Value::Varint(v)) => model.remove_extra_whitespaces = v != 0,
                            (5, Value::Varint(v)) => model.escape_whitespaces = v != 0,
                            (2..=5, _) => {
                                return Err(format!(
                                    "normalizer_spec field {f} has the wrong wire type"
                                ));
                            }
                            _ => {}
                        }
                    }
                }
                (1..=3, _) => return Err(format!("field {field} has the wrong wire type")),
                _ => {}
            }
        }
        if model.pieces.is_empty() {
            return Err("it has no pieces".into());
        }
        match model_type {
            1 => {}
            2 => return Err("it is a BPE model; T5 tokenizers are Unigram".into()),
            3 => return Err("it is a WORD model; T5 tokenizers are Unigram".into()),
            4 => return Err("it is a CHAR model; T5 tokenizers are Unigram".into()),
            t => return Err(format!("unknown model_type {t}; T5 tokenizers are Unigram")),
        }
        model.unk_id = u32::try_from(unk_id)
            .ok()
            .filter(|&id| (id as usize) < model.pieces.len())
            .ok_or_else(|| {
                format!(
                    "unk_id {unk_id} is not one of its {} pieces",
                    model.pieces.len()
                )
            })?;
        let mut seen = HashSet::with_capacity(model.pieces.len());
        for (id, p) in model.pieces.iter().enumerate() {
            if p.piece.is_empty() {
                return Err(format!("piece {id} is empty"));
            }
            if !seen.insert(p.piece.as_str()) {
                return Err(format!("piece {id} {:?} appears twice", p.piece));
            }
        }
        if !model.precompiled_charsmap.is_empty() {
            check_charsmap(&model.precompiled_charsmap)
                .map_err(|e| format!("precompiled_charsmap: {e}"))?;
        }
        Ok(model)
    }

    /// Builds the T5 tokenizer transformers builds from this model and
    /// `special` (see the module docs). `path` names the model in errors.
    pub fn t5_tokenizer(
        &self,
        special: &T5SpecialTokens,
        path: impl AsRef<Path>,
    ) -> Result<Tokenizer, TextError> {
        let path: PathBuf = path.as_ref().to_path_buf();
        let err = |reason: String| TextError::Tokenizer {
            path: path.clone(),
            reason,
        };
        if special.extra_ids > MAX_EXTRA_IDS {
            return Err(err(format!(
                "{} extra ids exceed {MAX_EXTRA_IDS}",
                special.extra_ids
            )));
        }
        let mut vocab: Vec<(String, f64)> =
            Vec::with_capacity(self.pieces.len() + special.extra_ids);
        vocab.extend(
            self.pieces
                .iter()
                .map(|p| (p.piece.clone(), f64::from(p.score))),
        );
        vocab.extend(
            (0..special.extra_ids)
                .rev()
                .map(|i| (format!("<extra_id_{i}>"), 0.0)),
        );
        let unigram = Unigram::from(vocab, Some(self.unk_id as usize), false)
            .map_err(|e| err(format!("cannot build the Unigram model: {e}")))?;
        let mut tok = Tokenizer::new(unigram);
        if !self.precompiled_charsmap.is_empty() {
            let normalizer = Precompiled::from(&self.precompiled_charsmap)
                .map_err(|e| err(format!("precompiled_charsmap: {e}")))?;
            tok.with_normalizer(Some(normalizer));
        }
        tok.with_pre_tokenizer(Some(Sequence::new(vec![
            WhitespaceSplit.into(),
            Metaspace::new('▁', PrependScheme::Always, true).into(),
        ])));
        tok.with_decoder(Some(MetaspaceDecoder::new(
            '▁',
            PrependScheme::Always,
            true,
        )));

        let raw = |content: &str, is_special: bool| {
            AddedToken::from(content, is_special).normalized(false)
        };
        let mut specials: Vec<AddedToken> = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(id, p)| p.kind == PieceType::Control || *id == self.unk_id as usize)
            .map(|(_, p)| raw(&p.piece, true))
            .collect();
        specials.extend(
            [&special.eos_token, &special.unk_token, &special.pad_token]
                .into_iter()
                .chain(&special.additional_special_tokens)
                .map(|t| raw(t, true)),
        );
        specials.extend((0..special.extra_ids).map(|i| raw(&format!("<extra_id_{i}>"), true)));
        tok.add_special_tokens(&specials);
        let user: Vec<AddedToken> = self
            .pieces
            .iter()
            .filter(|p| p.kind == PieceType::UserDefined)
            .map(|p| raw(&p.piece, false))
            .collect();
        if !user.is_empty() {
            tok.add_tokens(&user);
        }

        let eos = &special.eos_token;
        let eos_id = tok
            .token_to_id(eos)
            .ok_or_else(|| err(format!("no id for the eos token {eos:?}")))?;
        let post = TemplateProcessing::builder()
            .try_single(vec!["$A", eos.as_str()])
            .and_then(|b| b.try_pair(vec!["$A", eos.as_str(), "$B", eos.as_str()]))
            .map_err(|e| err(format!("eos token {eos:?}: {e}")))?
            .special_tokens(vec![(eos.as_str(), eos_id)])
            .build()
            .map_err(|e| err(format!("eos token {eos:?}: {e}")))?;
        tok.with_post_processor(Some(post));
        Ok(tok)
    }
}

/// Parses one `SentencePiece` message: `piece` (1), `score` (2), `type` (3).
fn parse_piece(bytes: &[u8]) -> Result<Piece, String> {
    let mut piece = None;
    let mut score = 0.0f32;
    let mut kind = PieceType::Normal;
    let mut r = Reader::new(bytes);
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => {
                piece = Some(
                    std::str::from_utf8(b)
                        .map_err(|_| "the piece text is not UTF-8".to_string())?
                        .to_owned(),
                );
            }
            (2, Value::Fixed32(bits)) => score = f32::from_bits(bits),
            (3, Value::Varint(v)) => {
                kind = PieceType::from_proto(v).ok_or_else(|| format!("unknown piece type {v}"))?;
            }
            (1..=3, _) => return Err(format!("field {field} has the wrong wire type")),
            _ => {}
        }
    }
    let piece = piece.ok_or_else(|| "it has no piece text".to_string())?;
    Ok(Piece { piece, score, kind })
}

/// A decoded protobuf field value. Groups (wire types 3/4) are refused: no
/// SentencePiece field uses them.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// A cursor over protobuf wire-format bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| format!("truncated varint at byte {}", self.pos))?;
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(format!("varint too long at byte {}", self.pos - 1));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint too long at byte {}", self.pos - 1))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let left = self.bytes.len() - self.pos;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= left)
            .ok_or_else(|| {
                format!(
                    "a field at byte {} claims {n} bytes but only {left} remain (truncated?)",
                    self.pos
                )
            })?;
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next field number and value, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.pos == self.bytes.len() {
            return Ok(None);
        }
        let at = self.pos;
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(format!("field number 0 at byte {at}"));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let n = self.varint()?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            w => return Err(format!("field {field} at byte {at} has wire type {w}")),
        };
        Ok(Some((field, value)))
    }
}

/// Checks that `tokenizers`' `Precompiled` normalizer can use `charsmap`
/// without indexing out of bounds or allocating from a bogus size.
///
/// The format is a little-endian `u32` trie size in bytes, that many bytes of
/// darts-clone double-array units (`u32` each), then NUL-separated UTF-8
/// replacement strings. The lookup reads unit `base ^ c` for every input byte
/// `c` at every state it reaches, and for a leaf the unit at the next base,
/// whose value is an offset into the strings. This walks every reachable
/// state once and checks all of those reads.
fn check_charsmap(charsmap: &[u8]) -> Result<(), String> {
    let size = charsmap
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("shorter than its 4-byte header")?;
    if size % 4 != 0 || size > charsmap.len() - 4 {
        return Err(format!(
            "trie size {size} does not fit its {} bytes",
            charsmap.len() - 4
        ));
    }
    let units: Vec<usize> = charsmap[4..4 + size]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let normalized = std::str::from_utf8(&charsmap[4 + size..])
        .map_err(|_| "replacement strings are not UTF-8".to_string())?;
    let offset = |u: usize| (u >> 10) << ((u & (1 << 9)) >> 6);
    let has_leaf = |u: usize| (u >> 8) & 1 == 1;
    let label = |u: usize| u & ((1 << 31) | 0xff);
    let value = |u: usize| u & ((1 << 31) - 1);
    let root = *units.first().ok_or("the trie is empty")?;
    let mut seen = vec![false; units.len()];
    let mut stack = vec![offset(root)];
    while let Some(base) = stack.pop() {
        // `base` may be any value: only bases that pass the check index `seen`.
        if base | 0xff >= units.len() {
            return Err(format!(
                "trie state {base} reads past its {} units",
                units.len()
            ));
        }
        if std::mem::replace(&mut seen[base], true) {
            continue;
        }
        for c in 1..=0xffusize {
            let unit = units[base ^ c];
            if label(unit) != c {
                continue;
            }
            let next = base ^ c ^ offset(unit);
            if has_leaf(unit) {
                let at = *units
                    .get(next)
                    .ok_or_else(|| format!("trie leaf {next} is past its {} units", units.len()))?;
                let v = value(at);
                if v > normalized.len() || !normalized.is_char_boundary(v) {
                    return Err(format!("replacement offset {v} is not in its strings"));
                }
            }
            stack.push(next);
        }
    }
    Ok(())
}
