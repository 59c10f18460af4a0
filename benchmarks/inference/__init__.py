"""What a trained model costs at inference: measurements (``measure``) and a run's figures
against its setting's dense model (``cost``)."""
