//! Every committed seed and every past crash, replayed through its target's
//! function in `just test`: a crash once found and fixed stays fixed
//! (`fuzz/regressions/TARGET/`), and every seed stays a valid start for
//! the fuzzer (`fuzz/seeds/TARGET/`).

use std::path::Path;

#[test]
fn every_seed_and_past_crash_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for (name, target) in fuzz::targets::ALL {
        let seeds = root.join("seeds").join(name);
        assert!(seeds.is_dir(), "target {name} has no seed corpus");
        for folder in [seeds, root.join("regressions").join(name)] {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                let input = std::fs::read(&path).expect("an input file");
                let outcome = std::panic::catch_unwind(|| target(&input));
                assert!(outcome.is_ok(), "{name}: {} fails", path.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= fuzz::targets::ALL.len());
}
