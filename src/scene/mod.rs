//! The simple-XML scene format (`.simscene.xml`): the generator, the parser the stand-in
//! loads scenes with, and the plan that builds the same scene inside a running CoppeliaSim
//! through the remote API, and the writer the stand-in's `sim.saveScene` uses. Pure.

pub mod generate;
pub mod parse;
pub mod remote_build;
pub mod write;

pub use generate::{generate_scene, try_generate_scene, SceneError, SceneOptions, Transport};
