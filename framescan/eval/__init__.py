"""``framescan eval``: scan a labelled set through the archive machinery and measure how often the
decisions are right (``manifest`` reads the set, ``rescore`` re-decides stored timelines under a
policy, ``metrics`` counts, ``suggest`` finds thresholds, ``build`` makes the project's set,
``render`` prints and draws, ``run`` ties them together). See docs/eval.md."""
