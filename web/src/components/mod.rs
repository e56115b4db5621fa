//! The page's components: [`App`] provides the client to everything below it; [`SayHello`] is the
//! unary call's form; [`Outcome`] shows what a call returned.

mod app;
mod outcome;
mod say_hello;

pub use app::App;
pub use outcome::Outcome;
pub use say_hello::SayHello;
