//! Build script: the git revision `--version` names, as `MONITORS_REVISION` (the shared
//! script of monitor-core/build.rs).

#[path = "../monitor-core/build.rs"]
mod revision;

fn main() {
    revision::main();
}
