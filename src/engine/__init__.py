"""Everything that calls DeepLabCut, one module per engine: ``pytorch`` (DeepLabCut 3's default).

A module offers: building a training set from prepared frames, training or resuming, predicting
frames, predicting videos, saving and loading a model (``Model``). The stages never import DeepLabCut.
"""
