# Minimal stub for pycld2 0.42 (the C extension ships no type information).
Detail = tuple[str, str, int, float]

class error(Exception): ...

LANGUAGES: tuple[tuple[str, str], ...]
DETECTED_LANGUAGES: tuple[str, ...]

def detect(
    utf8Bytes: str | bytes,
    isPlainText: bool = ...,
    hintTopLevelDomain: str = ...,
    hintLanguage: str = ...,
    hintLanguageHTTPHeaders: str = ...,
    hintEncoding: str = ...,
    returnVectors: bool = ...,
    debugScoreAsQuads: bool = ...,
    debugHTML: bool = ...,
    bestEffort: bool = ...,
    debugCR: bool = ...,
    debugVerbose: bool = ...,
    debugQuiet: bool = ...,
    debugEcho: bool = ...,
) -> tuple[bool, int, tuple[Detail, Detail, Detail]]: ...
