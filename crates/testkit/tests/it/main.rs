//! The stack as a person runs it: the real binaries, started the way
//! `just up` starts them, their command lines and their logs; and the
//! stack in-process on each database the IdP and the API keep state in.

mod databases;
mod readme;
mod stack;
