//! The simple-XML scene format (`.simscene.xml`): parser (pure).

pub mod parse;
