"""Library images in an export: find references (collect), fetch them safely (fetch), name them
for the zip and the CDN (naming), and the operator's limits (settings). No Prefect in here."""
