"""The embedded phantom's vocabulary: its classes and the domains it can generate.

Apart from the generator so that checking a spec (which names domains) imports neither it nor nibabel.
"""

from __future__ import annotations

import re

CLASS_NAMES = ("bg", "wm", "gm", "csf")
FIXED_DOMAINS = ("infant", "adult", "ct", "mr")
VALID_DOMAINS_TEXT = "infant, adult, ct, mr, site1..siteN (N >= 1)"
SITE = re.compile(r"site([1-9][0-9]*)")


def known_domain(name: str) -> bool:
    """Whether the phantom can generate ``name`` (infant, adult, ct, mr, site1, site2, ...)."""
    return name in FIXED_DOMAINS or SITE.fullmatch(name) is not None

# The abdomen dataset (platform.data.abdomen): background and DualNorm-UNet's eight BTCV organs, in its Table 2's
# column order, and its two institutions (Table 4).
ABDOMEN_CLASS_NAMES = ("bg", "spleen", "kidney_r", "kidney_l", "gallbladder", "pancreas", "liver", "stomach",
                       "aorta")
ABDOMEN_DOMAINS = ("btcv", "tcia")
