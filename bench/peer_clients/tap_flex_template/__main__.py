"""``python -m tap_flex_template``: the template's CLI entry point."""

from tap_flex_template.tap import TapFlexTemplate

TapFlexTemplate.cli()
