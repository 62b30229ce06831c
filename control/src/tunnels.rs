//! Work in progress: see the module's owner issue.
