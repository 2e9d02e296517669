"""Tuning: Optuna searches only a schedule's declared hyperparameters, on the validation split, with equal trial
budgets; its histories feed rule R10 and tuned grids."""
