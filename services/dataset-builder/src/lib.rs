//! dataset_builder service.
