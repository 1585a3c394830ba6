"""Model cards and the files of a model folder.

Owns the card schema and its safe loading with line numbers (`schema`), the one card writer, for new
cards and for edits that keep the author's comments (`writer`), every card at once (`bulk`), cards
in their plain shape read without the YAML parser (`plaincard`), sizes as written and printed
(`sizes`), the model's config file (`config`), its files and DVC pointers resolved once
(`model_files`), the metric set (`metrics`), lifecycle states and operations (`lifecycle`), the DVC
artifact declarations in dvc.yaml (`artifacts`), CODEOWNERS from the cards' owners (`codeowners`)
and scaffolding a new model (`scaffold`).

May import: `registry.core`, `registry.formats`. Must not import versions or any capability.
"""
