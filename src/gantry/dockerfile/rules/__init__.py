"""Rules of ``gantry lint`` beyond BuildKit's own (:mod:`gantry.dockerfile.checks` runs them)."""
