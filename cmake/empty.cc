// The numagrid shared library is made of the module archives, linked whole;
// CMake needs at least one source of its own.
