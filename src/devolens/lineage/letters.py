"""What the population letters count, for legends, help and reports (no pandas: the CLI's help imports it)."""

#: What each population letter counts (the cells named from that founder), for legends, help and reports.
LETTER_KEY: dict[str, str] = {
    "A": "AB and its descendants", "E": "EMS, E and E's descendants", "M": "MS and its descendants",
    "P": "the germline P0-P4 (one cell)", "C": "C and its descendants", "D": "D and its descendants",
    "Z": "Z2 and Z3 (P4's daughters)",
}

#: The key in one line: ``A = AB lineage, ...``.
LETTER_KEY_LINE: str = ("A = AB lineage, E = EMS and E lineage, M = MS lineage, P = germline P0-P4, C = C lineage, "
                        "D = D lineage, Z = Z2/Z3")
