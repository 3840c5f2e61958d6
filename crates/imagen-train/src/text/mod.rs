//! The demo cascade's text side: a tokenizer learnt from captions, brief
//! pre-training of a small T5 encoder on them (masked tokens, optionally an
//! ordering objective), and a probe of what the frozen encoder's states
//! say about word order.

mod order;
mod pretrain;
mod probe;
mod roles;
mod tokenizer;

pub use order::OrderObjective;
pub use pretrain::{PretrainConfig, PretrainStep, pretrain_encoder};
pub use probe::{
    LinearProbe, ProbeConfig, ProbeFeature, ProbeFit, ProbeReport, default_probe_held_out,
    object_features, probe_captions, probe_encoder,
};
pub use roles::{
    CaptionObject, Role, RoleCaption, random_group, random_role_caption, relation_synonyms,
    role_caption,
};
pub use tokenizer::{SPECIAL_TOKENS, write_word_tokenizer};
