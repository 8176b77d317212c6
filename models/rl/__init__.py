"""Reinforcement-learning specialists: one policy per market regime, blended by the regime's
causal probability (issue 18).

- :mod:`models.rl.actions`: the two action kinds (a continuous target position in [-1, 1], or
  {-1, 0, +1} with action masks) and their gymnasium spaces.
- :mod:`models.rl.observation`: :class:`ObservationSpec`, the observation contract shared by
  the training env and the strategy (feature names in order, normalisation, the position).
- :mod:`models.rl.specialists`: :class:`SpecialistSet`, the trained policies of a directory
  (one per regime label, optionally a generalist) with a JSON manifest.

Everything here works on arrays the caller builds (``models`` sits below ``research``): the
feature matrix comes from :mod:`research.features.matrix`, training orchestration from
:mod:`grodt.experiments`.
"""
