/* Keeps a module library non-empty before its first source file lands. */
typedef int htr_empty_translation_unit;
