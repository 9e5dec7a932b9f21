"""Detection rules over zones: intrusion, crowd, loitering (watch mode), no-parking.

Entry point: :class:`xueliang.inference.rules.engine.CameraRules` (one per camera).
"""
