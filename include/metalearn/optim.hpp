#pragma once
// Umbrella of the optim layer.
