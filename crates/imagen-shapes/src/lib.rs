//! Placeholder: filled in by the shapes dataset work.
