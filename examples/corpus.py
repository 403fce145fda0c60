"""The text corpus the language examples train on: the Python reference documentation that ships
with every Python installation (`pydoc_data.topics`, about 460 thousand characters of English
prose and code). Nothing is downloaded."""
import re


def text():
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def words(min_len=1):
    """Lower-case word tokens (letters, digits and underscores)."""
    return [w for w in re.findall(r"[a-z_][a-z0-9_]*", text().lower()) if len(w) >= min_len]
