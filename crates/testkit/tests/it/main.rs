//! The stack as a person runs it: the real binaries, started the way
//! `just up` starts them, their command lines and their logs.

mod readme;
mod stack;
