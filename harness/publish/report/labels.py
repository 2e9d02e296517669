"""Labels the report's text and its plots share, so a budget reads the same in a table and a figure title."""


def budget_label(budget: int) -> str:
    return "no retraining" if budget == 0 else f"{budget} epochs"
