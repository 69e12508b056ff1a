"""Alignment benchmarks: `assistant bench align` (answer quality gain) and `bench train` (training tokens/s)."""
