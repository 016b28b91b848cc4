//! One module per subcommand.

pub mod connect;
pub mod create;
pub mod delete;
pub mod disconnect;
pub mod list;
pub mod pause;
pub mod run;
