"""kt's own recommenders, for methods that need a model RecBole lacks (LEARN's twin towers).

Each is a RecBole ``GeneralRecommender`` subclass, so RecBole's dataset and dataloaders feed it and kt's one
training loop, evaluator and retrieval drive it like any registered model (training/models.py names it by
``implementation``); RecBole itself is not edited.
"""
