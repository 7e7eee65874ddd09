#pragma once
// Umbrella of the data layer.
