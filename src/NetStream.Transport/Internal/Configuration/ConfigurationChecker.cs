using System.ComponentModel;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace NetStream.Transport.Internal;

/// <summary>
/// Checks a configuration section against the option types it binds to, before binding: every key must name a
/// property, every value must convert. The configuration binder would either ignore a misspelt key or fail
/// without saying which value it could not read; this names both.
/// </summary>
internal static class ConfigurationChecker
{
    /// <summary>Lists what is wrong in <paramref name="section"/>, which binds to all of <paramref name="types"/>.</summary>
    public static List<string> Check(IConfigurationSection section, params Type[] types)
    {
        var errors = new List<string>();
        CheckSection(section, types, errors);
        return errors;
    }

    private static void CheckSection(IConfigurationSection section, Type[] types, List<string> errors)
    {
        foreach (var child in section.GetChildren())
        {
            var property = types
                .Select(t => t.GetProperty(child.Key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase))
                .FirstOrDefault(p => p is { CanRead: true });
            if (property is null)
            {
                var named = child.Value is { } value ? $"{child.Path} = '{value}'" : child.Path;
                errors.Add($"{named}: unknown key (known: {string.Join(", ", KnownKeys(types))}).");
                continue;
            }

            CheckValue(child, property.PropertyType, errors);
        }
    }

    private static void CheckValue(IConfigurationSection section, Type type, List<string> errors)
    {
        var scalar = Nullable.GetUnderlyingType(type) ?? type;
        if (scalar == typeof(string))
        {
            return;
        }

        if (IsScalar(scalar))
        {
            if (section.Value is null)
            {
                errors.Add($"{section.Path}: expected a single {Describe(scalar)} value, found a section.");
            }
            else if (!Converts(section.Value, scalar))
            {
                errors.Add($"{section.Path} = '{section.Value}': not a valid {Describe(scalar)}.");
            }

            return;
        }

        if (scalar.IsGenericType && scalar.GetGenericTypeDefinition() == typeof(Dictionary<,>))
        {
            var itemType = scalar.GetGenericArguments()[1];
            foreach (var item in section.GetChildren())
            {
                CheckSection(item, ItemTypes(itemType), errors);
            }

            return;
        }

        if (scalar.IsGenericType && scalar.GetGenericTypeDefinition() == typeof(List<>))
        {
            CheckList(section, scalar.GetGenericArguments()[0], errors);
            return;
        }

        if (section.Value is not null)
        {
            errors.Add($"{section.Path} = '{section.Value}': expected a section with keys {string.Join(", ", KnownKeys([scalar]))}.");
            return;
        }

        CheckSection(section, [scalar], errors);
    }

    private static void CheckList(IConfigurationSection section, Type itemType, List<string> errors)
    {
        if (section.Value is { Length: > 0 } value)
        {
            errors.Add($"{section.Path} = '{value}': expected a list ({section.Key}:0, {section.Key}:1, ... or a JSON array).");
            return;
        }

        foreach (var item in section.GetChildren())
        {
            if (!int.TryParse(item.Key, out _))
            {
                errors.Add($"{item.Path}: a list takes numbered entries ({section.Key}:0, {section.Key}:1, ...).");
                continue;
            }

            CheckValue(item, itemType, errors);
        }
    }

    /// <summary>Some option types bind one section to several types; they say so with <see cref="ConfigurationPartsAttribute"/>.</summary>
    private static Type[] ItemTypes(Type type) =>
        type.GetCustomAttribute<ConfigurationPartsAttribute>() is { } parts ? [type, .. parts.Types] : [type];

    private static bool IsScalar(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(decimal) || type == typeof(TimeSpan) || type == typeof(Uri);

    private static bool Converts(string value, Type type)
    {
        try
        {
            return TypeDescriptor.GetConverter(type).ConvertFromInvariantString(value) is not null;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or NotSupportedException or OverflowException || e.InnerException is FormatException or OverflowException)
        {
            return false;
        }
    }

    private static string Describe(Type type) => type switch
    {
        _ when type == typeof(int) || type == typeof(long) => "whole number",
        _ when type == typeof(bool) => "true/false",
        _ when type == typeof(TimeSpan) => "time span (hh:mm:ss)",
        { IsEnum: true } => $"{type.Name} ({string.Join(", ", Enum.GetNames(type))})",
        _ => type.Name,
    };

    private static IEnumerable<string> KnownKeys(IEnumerable<Type> types) => types
        .SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        .Select(p => p.Name)
        .Distinct()
        .Order(StringComparer.Ordinal);
}

/// <summary>Marks an option type whose configuration section also binds to other option types.</summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class ConfigurationPartsAttribute(params Type[] types) : Attribute
{
    public Type[] Types { get; } = types;
}
