//! The plugin sandbox against real components built from `plugins/`
//! (`plugins/build.sh` puts them in `plugins/dist/`): loading and signing,
//! limits, isolation and host calls.

mod connections;
mod host_calls;
mod limits;
mod loading;
mod support;
